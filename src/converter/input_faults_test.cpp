// Input faults whose exit code or message was wrong, each from a small crafted file: an
// unreadable file (3, not "cannot tell which format"), a directory, FIFO or dangling link where
// model.safetensors belongs (named, never blocking on the FIFO), a config.json that is a
// directory, MLX bits 9 (6 naming config.json), a pickle that is not a state dict or a hostile
// one, a garbage tokenizer.json (validate rejects it, convert does not copy it), and GGUF
// problems validate finds that convert now refuses with the same code. Messages are checked,
// not only codes.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "cli_fixture.h"

namespace mc::test {
namespace {

const char* kFaultsConfig = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 64,
  "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
  "num_key_value_heads": 1, "torch_dtype": "float32"})";

class InputFaults : public ConfigFixture {
 protected:
  InputFaults() : ConfigFixture(kFaultsConfig) {}
  // `modelconvert ARGS` exits `code` within 10 s and says every one of `says`.
  void expect(const std::string& args, int code, std::initializer_list<std::string> says) {
    const auto t0 = std::chrono::steady_clock::now();
    CliRun r;
    std::string out;
    r.rc = run_command("timeout 20 " + q(modelconvert_binary()) + " " + args, &out);
    r.out = out;
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0) << args;
    EXPECT_EQ(r.rc, code) << args << "\n" << r.out;
    for (const auto& s : says) EXPECT_NE(r.out.find(s), std::string::npos) << args << "\nmissing: " << s << "\n" << r.out;
  }
};

TEST_F(InputFaults, WeightFileThatIsNotAFile) {
  const fs::path src = make("hf", "src");
  struct Kind {
    const char* name;
    void (*make)(const fs::path&);
    int code;
    const char* says;
  };
  const Kind kinds[] = {
      {"dir", [](const fs::path& p) { fs::create_directory(p); }, 6, "not a regular file (a directory)"},
      {"fifo", [](const fs::path& p) { ASSERT_EQ(::mkfifo(p.c_str(), 0644), 0); }, 6, "not a regular file (a FIFO)"},
      {"dangling", [](const fs::path& p) { fs::create_symlink("no-such-target", p); }, 4,
       "a link to 'no-such-target', which does not exist"},
  };
  for (const auto& k : kinds) {
    const fs::path d = tmp / k.name;
    fs::create_directories(d);
    fs::copy_file(src / "config.json", d / "config.json");
    k.make(d / "model.safetensors");
    for (const char* cmd : {"convert", "inspect", "validate"}) {
      const std::string args = std::string(cmd) + " " + q(d) + (std::string(cmd) == "convert" ? " gguf -o " + q(tmp / "o.gguf") : "");
      expect(args, k.code, {"model.safetensors", k.says});
      auto r = mc_run(args);
      EXPECT_EQ(r.out.find("pytorch_model.bin"), std::string::npos) << r.out;
    }
    EXPECT_FALSE(fs::exists(tmp / "o.gguf"));
  }
}

TEST_F(InputFaults, ConfigJsonThatIsADirectory) {
  const fs::path src = make("hf", "src");
  fs::remove(src / "config.json");
  fs::create_directory(src / "config.json");
  for (const char* cmd : {"inspect", "validate"}) {
    expect(std::string(cmd) + " " + q(src), 6, {"config.json", "not a regular file (a directory)"});
    EXPECT_EQ(mc_run(std::string(cmd) + " " + q(src)).out.find("9223372036854775807"), std::string::npos);
  }
  // Named directly for --fake-weight: the same, not "cannot tell which format".
  fs::create_directories(tmp / "c2" / "config.json");
  expect("convert " + q(tmp / "c2" / "config.json") + " gguf --fake-weight -o " + q(tmp / "o.gguf"), 6,
         {"config.json", "not a regular file (a directory)"});
}

TEST_F(InputFaults, UnreadableFileIsAnIoError) {
  const fs::path src = make("safetensors", "w.safetensors");
  ::chmod(src.c_str(), 0);
  std::string prefix;
  if (::geteuid() == 0) {
    // root reads anything: run as nobody (the folder must let nobody in).
    if (run_command("command -v setpriv >/dev/null") != 0) GTEST_SKIP() << "running as root without setpriv";
    ::chmod(tmp.path().c_str(), 0755);
    prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
    if (run_command(prefix + q(modelconvert_binary()) + " list formats >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "nobody cannot run the built program here";
  }
  for (const char* cmd : {"convert", "inspect", "validate"}) {
    std::string out;
    const std::string args = std::string(cmd) + " " + q(src) + (std::string(cmd) == "convert" ? " gguf -o " + q(tmp / "o.gguf") : "");
    const int rc = run_command(prefix + q(modelconvert_binary()) + " " + args, &out);
    EXPECT_EQ(rc, 3) << out;
    EXPECT_NE(out.find("w.safetensors"), std::string::npos) << out;
    EXPECT_NE(out.find("Permission denied"), std::string::npos) << out;
    EXPECT_EQ(out.find("cannot tell which"), std::string::npos) << out;
  }
}

TEST_F(InputFaults, MlxBitsNineNamesConfigJson) {
  const fs::path src = make("mlx --quant 4bit", "mlx");
  std::string cfg = slurp(src / "config.json");
  for (size_t at = cfg.find("\"bits\": 4"); at != std::string::npos; at = cfg.find("\"bits\": 4"))
    cfg.replace(at, 9, "\"bits\": 9");
  put(src / "config.json", cfg);
  for (const char* cmd : {"convert", "inspect", "validate"}) {
    const std::string args = std::string(cmd) + " " + q(src) + (std::string(cmd) == "convert" ? " gguf -o " + q(tmp / "o.gguf") : "");
    expect(args, 6, {"config.json", "9 bits"});
  }
}

TEST_F(InputFaults, PickleThatIsNotAStateDict) {
  const fs::path bin = make("pytorch", "model.bin");
  // The base archive with data.pkl replaced by GLOBAL os.system + REDUCE (parsed, never run).
  const fs::path bad = tmp / "hostile.bin";
  ASSERT_EQ(run_command("/usr/bin/python3 -c \"import zipfile,sys; s=zipfile.ZipFile(sys.argv[1]); "
                        "o=zipfile.ZipFile(sys.argv[2],'w'); "
                        "[o.writestr(i.filename, b'\\x80\\x02cos\\nsystem\\nX\\x05\\x00\\x00\\x00touch\\x85R.' "
                        "if i.filename.endswith('/data.pkl') else s.read(i)) for i in s.infolist()]; o.close()\" " +
                        q(bin) + " " + q(bad)),
            0);
  expect("validate " + q(bad), 6, {"hostile.bin", "not a state dict"});
  expect("convert " + q(bad) + " safetensors -o " + q(tmp / "o.safetensors"), 6, {"hostile.bin", "not a state dict"});
  EXPECT_FALSE(fs::exists(tmp / "o.safetensors"));
}

TEST_F(InputFaults, GarbageTokenizerIsRejectedAndNotCopied) {
  const fs::path src = make("hf", "src");
  put(src / "tokenizer.json", "{\"model\": 12, garbage");
  expect("validate " + q(src), 6, {"tokenizer.json"});
  expect("convert " + q(src) + " hf -o " + q(tmp / "out"), 6, {"tokenizer.json"});
  EXPECT_FALSE(fs::exists(tmp / "out"));
  // A well-formed one is carried.
  put(src / "tokenizer.json",
      R"({"version": "1.0", "model": {"type": "WordLevel", "vocab": {"a": 0, "<unk>": 1}, "unk_token": "<unk>"}})");
  expect("convert " + q(src) + " hf -o " + q(tmp / "out"), 0, {});
  EXPECT_EQ(slurp(tmp / "out" / "tokenizer.json"), slurp(src / "tokenizer.json"));
}

// A general.name that is not UTF-8 changes nothing but the name: the HF output equals that of
// the unpatched file byte for byte, and `inspect --json` shows the name with U+FFFD.
TEST_F(InputFaults, GgufInvalidUtf8NameConvertsToHf) {
  const fs::path g = make("gguf", "m.gguf");
  expect("convert " + q(g) + " hf -o " + q(tmp / "clean"), 0, {});
  // general.name's value patched in place to bytes that are not UTF-8 (same length).
  std::string b = slurp(g);
  const std::string key = "general.name";
  const size_t at = b.find(key);
  ASSERT_NE(at, std::string::npos);
  const size_t val = at + key.size() + 4 + 8;  // type u32, then the string's u64 length
  ASSERT_LT(val + 2, b.size());
  b[val] = char(0xff);
  b[val + 1] = char(0xfe);
  put(g, b);
  expect("convert " + q(g) + " hf -o " + q(tmp / "out"), 0, {});
  for (const char* f : {"config.json", "model.safetensors"}) {
    ASSERT_TRUE(fs::exists(tmp / "clean" / f)) << f;
    EXPECT_EQ(slurp(tmp / "out" / f), slurp(tmp / "clean" / f)) << f;
  }
  auto r = mc_run("inspect " + q(g) + " --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  const std::string json_name = "\"name\": \"\xEF\xBF\xBD\xEF\xBF\xBD";  // 0xFF 0xFE -> two U+FFFD
  EXPECT_NE(r.out.find(json_name), std::string::npos) << r.out.substr(0, 400);
}

}  // namespace
}  // namespace mc::test
