// Test helper: starts tests/py/fake_hub.py on 127.0.0.1 (a stand-in hub, standard library
// only) for one test and stops it at the end; reads its request log.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "testutil.h"

namespace mc::test {

class FakeHub {
 public:
  // `spec` is the JSON the script reads (repos, token, failures).
  explicit FakeHub(const nlohmann::json& spec, const fs::path& dir) : dir_(dir) {
    fs::create_directories(dir_);
    std::ofstream(dir_ / "spec.json") << spec.dump(2);
    const std::string script = (repo_root() / "tests" / "py" / "fake_hub.py").string();
    const std::string spec_p = (dir_ / "spec.json").string(), port_p = (dir_ / "port").string(),
                      log_p = (dir_ / "log.jsonl").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/usr/bin/python3", "python3", script.c_str(), spec_p.c_str(), port_p.c_str(), log_p.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !fs::exists(dir_ / "port"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    std::ifstream f(dir_ / "port");
    f >> port_;
  }
  ~FakeHub() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  bool up() const { return port_ > 0; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Every request so far (method, path, host, authorization, range, status).
  std::vector<nlohmann::json> log() const {
    std::vector<nlohmann::json> out;
    std::ifstream f(dir_ / "log.jsonl");
    std::string line;
    while (std::getline(f, line))
      if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    return out;
  }
  void clear_log() const { std::ofstream(dir_ / "log.jsonl", std::ios::trunc); }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace mc::test
