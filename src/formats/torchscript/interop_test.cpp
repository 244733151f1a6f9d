// Interop with real torch (Debian python3-torch 1.13, ctest label: interop). Per family one
// python process (tests/py/ts_oracle.py) loads our archives with torch.jit.load and compares
// their logits with an independent forward of the source (tests/py/ref_forward.py); torch's own
// re-save of the loaded module is then read back by us. A second script writes torch.jit.save
// archives of plain modules (scripted and traced) for the reader. Skips without torch.
#include <gtest/gtest.h>

#include "formats/torchscript/archive.h"
#include "formats/torchscript/test_models.h"
#include "testutil.h"

namespace mc::torchscript {
namespace {

using mc::test::mc_run;
using mc::test::q;

constexpr const char* kIds = "1,5,9,17,33,65,129,200,7,3,250,11";

// A family's run: the source HF dir, our f32/bf16/fp16 archives, torch's answers.
void run_family(const ojson& cfg) {
  MC_SKIP_UNLESS_TORCH();
  mc::test::TempDir tmp;
  const fs::path src = tmp / "src";
  ASSERT_TRUE(fixtures::write_hf_dir(fixtures::tiny_model(cfg, DType::F32, 11), src).ok());
  for (const char* dt : {"", "bf16", "fp16"}) {
    const std::string name = std::string("m") + dt + ".pt";
    const std::string opt = *dt ? std::string(" --dtype ") + dt : "";
    auto r = mc_run("convert " + q(src) + " torchscript -o " + q(tmp / name) + opt + " --quiet");
    ASSERT_EQ(r.rc, 0) << r.out;
  }
  std::string out;
  const int rc = mc::test::run_python("ts_oracle.py --src " + q(src) + " --f32 " + q(tmp / "m.pt") + " --bf16 " +
                                          q(tmp / "mbf16.pt") + " --f16 " + q(tmp / "mfp16.pt") + " --resave " +
                                          q(tmp / "resaved.pt") + " --ids " + kIds,
                                      &out);
  ASSERT_EQ(rc, 0) << out;
  const auto j = mc::test::last_json_line(out);
  ASSERT_TRUE(j.has_value()) << out;
  SCOPED_TRACE(out);
  // f32: torch.jit.load(ours)(input_ids) is the source's forward to 1e-4
  const auto& f = (*j)["f32"];
  EXPECT_LE(f["max_abs_diff"].get<double>(), 1e-4);
  EXPECT_GT(f["range"].get<double>(), 0.5);  // the logits are not trivially small
  EXPECT_EQ(f["top1"].get<double>(), 1.0);
  EXPECT_EQ(f["shape"], nlohmann::json::array({1, 12, 256}));
  EXPECT_TRUE(f["params_equal"].get<bool>()) << f["param_mismatches"].dump();
  EXPECT_LE((*j)["batch"]["max_abs_diff"].get<double>(), 1e-5);
  EXPECT_TRUE((*j)["train_eval"]["after_train"].get<bool>());
  EXPECT_TRUE((*j)["train_eval"]["after_eval"].get<bool>());
  // torch.jit.save of the loaded module computes the same and keeps version 3
  EXPECT_EQ((*j)["resave"]["max_abs_diff"].get<double>(), 0.0);
  EXPECT_EQ((*j)["resave"]["version"], "3");
  // bf16 runs in bf16: within bf16 rounding of the activations (3% of the logit range), same argmax
  const auto& b = (*j)["bf16"];
  EXPECT_EQ(b["dtype"], "bfloat16");
  EXPECT_TRUE(b["params_equal"].get<bool>());
  EXPECT_LE(b["max_abs_diff"].get<double>(), 0.03 * b["range"].get<double>());
  EXPECT_GE(b["top1"].get<double>(), 11.0 / 12.0);
  // fp16 loads with fp16 parameters equal to the source cast; after .float() it computes the
  // fp16 weights' forward (torch 1.13 has no fp16 matmul on CPU)
  const auto& h = (*j)["f16"];
  EXPECT_EQ(h["param_dtypes"], nlohmann::json::array({"float16"}));
  EXPECT_TRUE(h["params_equal"].get<bool>());
  EXPECT_LE(h["max_abs_diff"].get<double>(), 1e-4);

  // Our reader on torch's re-save and on ours: the source tensors back bit for bit (the
  // safetensors of HF -> TorchScript -> safetensors equal HF -> safetensors byte for byte).
  auto direct = mc_run("convert " + q(src) + " safetensors -o " + q(tmp / "direct") + " --quiet");
  ASSERT_EQ(direct.rc, 0) << direct.out;
  for (const char* ts : {"m.pt", "resaved.pt"}) {
    SCOPED_TRACE(ts);
    auto v = mc_run("validate " + q(tmp / ts));
    EXPECT_EQ(v.rc, 0) << v.out;
    const fs::path back = tmp / (std::string(ts) + "-st");
    auto r = mc_run("convert " + q(tmp / ts) + " safetensors -o " + q(back) + " --quiet");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(mc::test::slurp(back / "model.safetensors"), mc::test::slurp(tmp / "direct" / "model.safetensors"));
    EXPECT_EQ(mc::test::slurp(back / "config.json"), mc::test::slurp(src / "config.json"));
  }
  auto chk = mc_run("check " + q(tmp / "resaved.pt") + " --compare " + q(src) + " --ids " + kIds + " --max-new-tokens 2");
  EXPECT_EQ(chk.rc, 0) << chk.out;
}

TEST(TorchScriptInterop, Llama) {
  ojson c = fixtures::tiny_config("llama");
  c["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  run_family(c);
}
TEST(TorchScriptInterop, MistralSlidingWindow) { run_family(fixtures::tiny_config("mistral")); }
TEST(TorchScriptInterop, Qwen2) { run_family(fixtures::tiny_config("qwen2")); }
TEST(TorchScriptInterop, MiniCPM) { run_family(fixtures::tiny_config("minicpm")); }
TEST(TorchScriptInterop, GPT2) { run_family(fixtures::tiny_config("gpt2")); }
TEST(TorchScriptInterop, Qwen3) { run_family(fixtures::tiny_config("qwen3")); }
TEST(TorchScriptInterop, Phi3) { run_family(fixtures::tiny_config("phi3")); }
TEST(TorchScriptInterop, Gemma) { run_family(fixtures::tiny_config("gemma")); }

// torch.jit.save archives of plain modules: parameters and buffers (tied ones under both names,
// a bf16 parameter, an int64 counter) read back bit for bit under their module paths.
TEST(TorchScriptInterop, PlainModulesScriptedAndTraced) {
  MC_SKIP_UNLESS_TORCH();
  mc::test::TempDir tmp;
  std::string out;
  ASSERT_EQ(mc::test::run_python("ts_plain_modules.py " + q(tmp.path()), &out), 0) << out;
  const auto expected = mc::test::read_json_file(tmp / "expected.json");
  ASSERT_TRUE(expected.has_value());
  auto hex = [](const TensorEntry& e) {
    auto b = read_all(e);
    std::string s;
    for (std::byte x : *b) s += fmt::format("{:02x}", uint8_t(x));
    return s;
  };
  for (const auto& [file, want] : expected->items()) {
    SCOPED_TRACE(file);
    std::vector<Error> problems;
    auto a = open_archive(tmp / file, &problems);
    ASSERT_TRUE(a.ok()) << a.error().render();
    EXPECT_TRUE(problems.empty()) << problems[0].render();
    EXPECT_FALSE(a->config_json.has_value());
    EXPECT_EQ(a->modules[0].cls, want["root_class"]);
    std::vector<std::string> paths;
    for (const auto& m : a->modules) paths.push_back(m.path);
    std::sort(paths.begin(), paths.end());
    EXPECT_EQ(nlohmann::json(paths), want["modules"]);
    for (const auto& [table, store] : {std::pair{"parameters", &a->parameters}, std::pair{"buffers", &a->buffers}}) {
      EXPECT_EQ(store->size(), want[table].size()) << table;
      for (const auto& [name, t] : want[table].items()) {
        const TensorEntry* e = store->find(name);
        ASSERT_NE(e, nullptr) << name;
        EXPECT_EQ(dtype_name(e->dtype), std::string(t["dtype"] == "float32" ? "f32" : t["dtype"] == "bfloat16" ? "bf16" : "i64"));
        EXPECT_EQ(nlohmann::json(e->shape), t["shape"]) << name;
        EXPECT_EQ(hex(*e), t["hex"].get<std::string>()) << name;
      }
    }
    if (file == "scripted.pt") {  // (tracing keeps no Python attributes)
      EXPECT_NE(std::find_if(a->attributes.begin(), a->attributes.end(),
                             [](const auto& kv) { return kv.first == "name" && kv.second == "'plain'"; }),
                a->attributes.end());
    }
    // inspect describes it; convert gives its tensors as a state dict would name them
    auto ins = mc_run("inspect " + q(tmp / file) + " --json");
    ASSERT_EQ(ins.rc, 0) << ins.out;
    const auto ij = nlohmann::json::parse(ins.out, nullptr, false);
    ASSERT_TRUE(ij.is_object()) << ins.out;
    EXPECT_EQ(ij["format"], "torchscript");
    EXPECT_EQ(ij["details"]["parameters"].size(), want["parameters"].size());
    EXPECT_EQ(ij["details"]["root_class"], want["root_class"]);
    auto conv = mc_run("convert " + q(tmp / file) + " safetensors -o " + q(tmp / (file + "-st")) + " --quiet");
    EXPECT_EQ(conv.rc, 0) << conv.out;
    // TorchScript -> TorchScript of an archive we did not write: its own code, our storages
    for (const char* dt : {"", "bf16"}) {
      const std::string o = file.substr(0, file.size() - 3) + "-resaved" + dt + ".pt";
      auto rs = mc_run("convert " + q(tmp / file) + " torchscript -o " + q(tmp / o) + (*dt ? " --dtype bf16" : "") +
                       " --quiet");
      ASSERT_EQ(rs.rc, 0) << rs.out;
      auto b = open_archive(tmp / o);
      ASSERT_TRUE(b.ok()) << b.error().render();
      ASSERT_EQ(b->parameters.size(), a->parameters.size());
      for (const auto& e : a->parameters) {
        const TensorEntry* r = b->parameters.find(e.name);
        ASSERT_NE(r, nullptr) << e.name;
        if (!*dt) EXPECT_EQ(hex(*r), hex(e)) << e.name;
        else EXPECT_EQ(r->dtype, DType::BF16) << e.name;
      }
    }
  }
  // torch runs the re-saved archives as it runs the originals
  out.clear();
  ASSERT_EQ(mc::test::run_python("ts_plain_modules.py --compare " + q(tmp / "scripted.pt") + " " +
                                     q(tmp / "scripted-resaved.pt") + " " + q(tmp / "traced.pt") + " " +
                                     q(tmp / "traced-resavedbf16.pt"),
                                 &out),
            0)
      << out;
  const auto c = mc::test::last_json_line(out);
  ASSERT_TRUE(c.has_value()) << out;
  EXPECT_EQ((*c)["scripted-resaved.pt"]["max_abs_diff"].get<double>(), 0.0) << out;
  EXPECT_EQ((*c)["traced-resavedbf16.pt"]["dtypes"], nlohmann::json::array({"bfloat16"})) << out;
  EXPECT_LE((*c)["traced-resavedbf16.pt"]["max_abs_diff"].get<double>(), 0.05) << out;
}

}  // namespace
}  // namespace mc::torchscript
