// The fixture of the CLI input-fault tests: a temporary directory holding a model config
// (cfg/config.json) and the binary checked to exist; make() turns the config into a small model
// of ours in any format (random fake weights), for a test to damage.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "testutil.h"

namespace mc::test {

class ConfigFixture : public ::testing::Test {
 protected:
  explicit ConfigFixture(std::string config) : config_(std::move(config)) {}
  void SetUp() override {
    ASSERT_TRUE(fs::exists(modelconvert_binary())) << modelconvert_binary();
    fs::create_directories(tmp / "cfg");
    put(config_path(), config_);
  }
  fs::path config_path() const { return tmp / "cfg" / "config.json"; }
  // `format` output of the config with random weights, at tmp/name.
  fs::path make(const std::string& format, const std::string& name) {
    const fs::path out = tmp / name;
    auto r = mc_run("convert " + q(config_path()) + " " + format + " --fake-weight --fake-weight-init random -o " +
                    q(out));
    EXPECT_EQ(r.rc, 0) << r.out;
    return out;
  }
  TempDir tmp;

 private:
  std::string config_;
};

}  // namespace mc::test
