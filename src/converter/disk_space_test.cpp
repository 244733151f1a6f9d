// Disk space: a conversion whose disk fills up while writing (a small tmpfs in a private mount
// namespace where the machine allows one, and a file size limit, RLIMIT_FSIZE, everywhere) exits
// 9 naming the output, leaves nothing at the final path and no temporary, and leaves the input
// as it was; the free-space check before writing judges the planned output (a q8_0 GGUF or a
// 4-bit MLX output of an f32 model fits where the input's size would not), with the free figure
// stood in by MC_TEST_FREE_BYTES.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "testutil.h"

namespace mc::test {
namespace {

// f32, ~0.63 MB of weights (tmpfs / file size limit tests).
const char* kSmall = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 512,
  "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2, "num_attention_heads": 4,
  "num_key_value_heads": 2, "torch_dtype": "float32"})";
// f32, 1.64 M parameters = 6.6 MB (free-space estimate tests).
const char* kMedium = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 2048,
  "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 1, "num_attention_heads": 4,
  "num_key_value_heads": 2, "torch_dtype": "float32"})";

// Runs `sh -c cmd` in a child with an optional file size limit (SIGXFSZ ignored, so writes past
// it fail with EFBIG instead of killing the program); stdout+stderr to `log`. Exit status or -1.
int run_limited(const std::string& cmd, const fs::path& log, rlim_t fsize = RLIM_INFINITY) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (fsize != RLIM_INFINITY) {
      signal(SIGXFSZ, SIG_IGN);
      struct rlimit rl{fsize, fsize};
      if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(120);
    }
    const std::string full = cmd + " >" + q(log) + " 2>&1";
    execl("/bin/sh", "sh", "-c", full.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

class DiskSpace : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(modelconvert_binary())) << modelconvert_binary();
    fs::create_directories(tmp / "cfg");
  }
  // An HF directory (safetensors) from `config`, written by us.
  fs::path hf_input(const char* config) {
    put(tmp / "cfg" / "config.json", config);
    const fs::path src = tmp / "src";
    auto r = mc_run("convert " + q(tmp / "cfg" / "config.json") + " hf --fake-weight --fake-weight-init random -o " + q(src));
    EXPECT_EQ(r.rc, 0) << r.out;
    return src;
  }
  std::string mc() const { return q(modelconvert_binary()); }
  TempDir tmp;
};

// The output folder after a run: every name in it (nothing may be left).
std::string listing(const fs::path& dir) {
  std::string names;
  for (const auto& e : fs::directory_iterator(dir)) names += e.path().filename().string() + " ";
  return names;
}

TEST_F(DiskSpace, FileSizeLimitGivesNoSpaceAndNoLitter) {
  const fs::path src = hf_input(kSmall);
  const auto before = snapshot(src);
  const fs::path out_dir = tmp / "out";
  fs::create_directories(out_dir);
  // The limit lies under the output's size: preallocation or a write fails with EFBIG.
  for (const std::string target : {"gguf", "safetensors"}) {
    const fs::path out = out_dir / (target == "gguf" ? "m.gguf" : "m");
    const fs::path log = tmp / "log.txt";
    const int rc = run_limited(mc() + " convert " + q(src) + " " + target + " -o " + q(out), log, 200 << 10);
    const std::string text = slurp(log);
    EXPECT_EQ(rc, 9) << target << "\n" << text;
    EXPECT_NE(text.find("the output " + out.string() + " does not fit"), std::string::npos) << text;
    EXPECT_FALSE(fs::exists(fs::symlink_status(out))) << target;
    EXPECT_EQ(listing(out_dir), "") << target;
  }
  EXPECT_EQ(snapshot(src), before);
}

TEST_F(DiskSpace, FullTmpfsGivesNoSpaceAndNoLitter) {
  std::string probe;
  if (run_command("unshare -rm sh -c \"mount -t tmpfs -o size=64k tmpfs '" + tmp.path().string() + "'\"", &probe) != 0)
    GTEST_SKIP() << "no unprivileged tmpfs here (unshare -rm + mount -t tmpfs failed: " << probe
                 << "); the file size limit test covers the out-of-space path";
  const fs::path src = hf_input(kSmall);
  const auto before = snapshot(src);
  const fs::path mnt = tmp / "mnt";
  fs::create_directories(mnt);
  // The tmpfs lives as long as the namespace: the run and the look at what it left happen inside.
  // MC_TEST_FREE_BYTES lets the run past the check before writing, so the disk really fills up.
  for (const std::string target : {"gguf", "safetensors"}) {
    const std::string out = target == "gguf" ? "m.gguf" : "m";
    const fs::path log = tmp / "log.txt";
    const std::string script = "mount -t tmpfs -o size=256k tmpfs " + q(mnt) + " || exit 100; MC_TEST_FREE_BYTES=" +
                               std::to_string(uint64_t(1) << 40) + " " + mc() + " convert " + q(src) + " " + target +
                               " -o " + q(mnt / out) + "; rc=$?; echo; echo \"LEFT:[$(ls -A " + q(mnt) + ")]\"; exit $rc";
    std::string quoted;  // the script inside single quotes for `unshare ... sh -c`
    for (char c : script) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    const int rc = run_limited("unshare -rm sh -c '" + quoted + "'", log);
    const std::string text = slurp(log);
    EXPECT_EQ(rc, 9) << target << "\n" << text;
    EXPECT_NE(text.find("No space left"), std::string::npos) << text;
    EXPECT_NE(text.find("the output " + (mnt / out).string() + " does not fit"), std::string::npos) << text;
    EXPECT_NE(text.find("LEFT:[]"), std::string::npos) << "output or temporaries left on the full disk:\n" << text;
  }
  EXPECT_EQ(snapshot(src), before);
}

TEST_F(DiskSpace, FreeSpaceCheckJudgesThePlannedOutput) {
  const fs::path src = hf_input(kMedium);
  uint64_t input_bytes = 0;
  for (const auto& e : fs::directory_iterator(src))
    if (e.path().extension() == ".safetensors") input_bytes += fs::file_size(e.path());
  ASSERT_GT(input_bytes, 6'000'000u);
  // 5 MB free: less than the input (the old estimate refused), more than a q8_0 GGUF or a 4-bit
  // MLX output need.
  const std::string free5 = "MC_TEST_FREE_BYTES=5000000 ";
  {
    const fs::path out = tmp / "q8.gguf";
    std::string text;
    const int rc = run_command(free5 + mc() + " convert " + q(src) + " gguf --quant q8_0 -o " + q(out), &text);
    EXPECT_EQ(rc, 0) << text;
    ASSERT_TRUE(fs::exists(out)) << text;
    EXPECT_LT(fs::file_size(out), 5'000'000u);
    EXPECT_GT(fs::file_size(out), input_bytes / 4);  // really q8_0 (~1.06 bytes a weight), not smaller
  }
  {
    const fs::path out = tmp / "mlx4";
    std::string text;
    const int rc = run_command(free5 + mc() + " convert " + q(src) + " mlx --quant 4bit -o " + q(out), &text);
    EXPECT_EQ(rc, 0) << text;
    EXPECT_TRUE(fs::exists(out / "config.json")) << text;
  }
  // An f32 copy needs the input's size: refused with 9 before anything is written.
  {
    const fs::path out = tmp / "copy";
    std::string text;
    const int rc = run_command(free5 + mc() + " convert " + q(src) + " safetensors -o " + q(out), &text);
    EXPECT_EQ(rc, 9) << text;
    EXPECT_NE(text.find("MB are free"), std::string::npos) << text;
    EXPECT_FALSE(fs::exists(out));
  }
  // A figure too small even for q8_0: 9, naming where the output goes, and nothing written.
  {
    fs::create_directories(tmp / "small");
    const fs::path out = tmp / "small" / "q8.gguf";
    std::string text;
    const int rc = run_command("MC_TEST_FREE_BYTES=2000000 " + mc() + " convert " + q(src) + " gguf --quant q8_0 -o " + q(out), &text);
    EXPECT_EQ(rc, 9) << text;
    EXPECT_NE(text.find((tmp / "small").string()), std::string::npos) << text;
    EXPECT_EQ(listing(tmp / "small"), "");
  }
}

}  // namespace
}  // namespace mc::test
