// Shared helpers for the unit and interop tests.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace mc::test {

namespace fs = std::filesystem;

// A fresh temporary directory removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& s) const { return path_ / s; }

 private:
  fs::path path_;
};

// Repository root (tests run with it as the working directory).
fs::path repo_root();
// ../shared/fixtures/<rel> if present, else nullopt (callers GTEST_SKIP with a message).
std::optional<fs::path> fixture(const std::string& rel);
// /usr/bin/python3 with torch importable? (interop tests skip when not).
bool have_torch();
// Runs `/usr/bin/python3 tests/py/<script> args...`; returns its exit status, stdout in *out.
int run_python(const std::string& script_and_args, std::string* out = nullptr);
// Runs a shell command, capturing stdout+stderr.
int run_command(const std::string& cmd, std::string* out = nullptr);
// Path of the built modelconvert binary (MC_BINARY env, else build/modelconvert).
fs::path modelconvert_binary();

// Running the program: `modelconvert ARGS` with stdout+stderr captured.
struct CliRun {
  int rc = -1;
  std::string out;
};
CliRun mc_run(const std::string& args);
// A path quoted for the shell (single quotes; paths with a quote are not supported).
std::string q(const fs::path& p);
// Whole file as bytes ("" when missing).
std::string slurp(const fs::path& p);
// Writes `bytes` to `p` (replacing it).
void put(const fs::path& p, const std::string& bytes);
// Every regular file under `root` (or `root` itself when it is one) with its bytes, keyed by the
// path relative to `root`; links and FIFOs are neither followed nor opened. Shows an input untouched.
std::map<std::string, std::string> snapshot(const fs::path& root);
// The last line of a program's output that starts with '{', parsed (nullopt if none parses):
// the result line of the node/python helpers, which may log before it.
std::optional<nlohmann::json> last_json_line(const std::string& out);
// A JSON file, parsed (nullopt when missing or invalid).
std::optional<nlohmann::json> read_json_file(const fs::path& p);
// A tiny random HF model from tests/py/make_models.py (e.g. args "--arch llama --seed 3");
// a failure is a fatal test failure.
void make_model(const fs::path& dir, const std::string& args);

// Sets environment variables for one test and restores them at the end.
class EnvGuard {
 public:
  void set(const char* k, const std::string& v) {
    save(k);
    ::setenv(k, v.c_str(), 1);
  }
  void unset(const char* k) {
    save(k);
    ::unsetenv(k);
  }
  ~EnvGuard() {
    for (auto& [k, v] : saved_) {
      if (v) ::setenv(k.c_str(), v->c_str(), 1);
      else ::unsetenv(k.c_str());
    }
  }

 private:
  void save(const char* k) {
    for (auto& s : saved_)
      if (s.first == k) return;
    const char* v = std::getenv(k);
    saved_.emplace_back(k, v ? std::optional<std::string>(v) : std::nullopt);
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

}  // namespace mc::test

#define MC_SKIP_UNLESS_TORCH() \
  do { if (!::mc::test::have_torch()) GTEST_SKIP() << "python3-torch not installed: interop test skipped"; } while (0)
