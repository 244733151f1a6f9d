#include "testutil.h"

#include <gtest/gtest.h>

#include <fstream>

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <random>

namespace mc::test {

TempDir::TempDir() {
  std::random_device rd;
  path_ = fs::temp_directory_path() /
          ("mc-test-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!std::getenv("MC_KEEP_TEST_FILES")) fs::remove_all(path_, ec);
}

fs::path repo_root() { return fs::current_path(); }

std::optional<fs::path> fixture(const std::string& rel) {
  fs::path p = repo_root() / ".." / "shared" / "fixtures" / rel;
  if (const char* env = std::getenv("MC_FIXTURES")) p = fs::path(env) / rel;
  std::error_code ec;
  if (fs::exists(p, ec)) return p;
  return std::nullopt;
}

int run_command(const std::string& cmd, std::string* out) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf{};
  std::string acc;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) acc.append(buf.data(), n);
  const int rc = pclose(p);
  if (out) *out = std::move(acc);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

bool have_torch() {
  static const bool ok = run_command("/usr/bin/python3 -c 'import torch, numpy'") == 0;
  return ok;
}

int run_python(const std::string& script_and_args, std::string* out) {
  return run_command("/usr/bin/python3 " + (repo_root() / "tests" / "py").string() + "/" +
                         script_and_args,
                     out);
}

fs::path modelconvert_binary() {
  if (const char* env = std::getenv("MC_BINARY")) return env;
  return MC_BINARY_PATH;
}

CliRun mc_run(const std::string& args) {
  CliRun r;
  r.rc = run_command(modelconvert_binary().string() + " " + args, &r.out);
  return r;
}

void make_model(const fs::path& dir, const std::string& args) {
  std::string out;
  ASSERT_EQ(run_python("make_models.py " + q(dir) + " " + args, &out), 0) << out;
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void put(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> m;
  std::error_code ec;
  if (fs::is_regular_file(fs::symlink_status(root, ec))) {
    m[root.filename().string()] = slurp(root);
    return m;
  }
  for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator(); it.increment(ec))
    if (fs::is_regular_file(it->symlink_status(ec))) m[fs::relative(it->path(), root).string()] = slurp(it->path());
  return m;
}

std::optional<nlohmann::json> last_json_line(const std::string& out) {
  size_t end = out.size();
  while (end > 0) {
    size_t start = out.rfind('\n', end - 1);
    start = start == std::string::npos ? 0 : start + 1;
    if (start < end && out[start] == '{') {
      try {
        return nlohmann::json::parse(out.substr(start, end - start));
      } catch (const std::exception&) {
        return std::nullopt;
      }
    }
    if (start == 0) break;
    end = start - 1;
  }
  return std::nullopt;
}

std::optional<nlohmann::json> read_json_file(const fs::path& p) {
  std::ifstream f(p);
  if (!f) return std::nullopt;
  try {
    return nlohmann::json::parse(f);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace mc::test
