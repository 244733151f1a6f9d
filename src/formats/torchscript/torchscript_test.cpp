// TorchScript engine without torch: the generated program's structure for every family, the
// write -> read round trip (bit-exact tensors, config, extra files), validate/describe, and the
// catalogue of malformed archives (truncated, missing records, hostile pickles, undeclared
// classes, missing attributes, damaged deflated code), each refused with a clear error.
#include <gtest/gtest.h>

#include <set>

#include "formats/torchscript/archive.h"
#include "formats/torchscript/emit.h"
#include "formats/torchscript/test_models.h"
#include "formats/torchscript/torchscript.h"
#include "graph/runtime.h"
#include "testutil.h"

namespace mc::torchscript {
namespace {

using fixtures::tiny_config;
using fixtures::tiny_model;

const char* const kFamilies[] = {"llama", "mistral", "qwen2", "minicpm", "gpt2", "qwen3", "phi3", "gemma"};

Result<formats::WriteResult> write(const Model& m, const fs::path& out) {
  ThreadPool pool(2);
  formats::WriteOptions o;
  o.pool = &pool;
  o.chunk_bytes = 4096;  // several chunks per tensor
  return write_model(m, out, o);
}

std::vector<std::byte> bytes_of(const TensorEntry& e) {
  auto b = read_all(e);
  EXPECT_TRUE(b.ok());
  return b.ok() ? *b : std::vector<std::byte>{};
}

// ---- the generated program ------------------------------------------------------------------

TEST(TorchScriptEmit, EveryFamilyDeclaresItsTreeWithHfNames) {
  for (const char* fam : kFamilies) {
    SCOPED_TRACE(fam);
    const Model m = tiny_model(tiny_config(fam));
    auto g = graph::build_graph(m);
    ASSERT_TRUE(g.ok()) << g.error().render();
    auto p = emit_program(*g, m);
    ASSERT_TRUE(p.ok()) << p.error().render();
    EXPECT_EQ(p->qualifier, std::string("__torch__.modelconvert.") + fam);
    EXPECT_EQ(p->version, 3);  // no op with an upgrader is printed
    auto decls = parse_classes(p->source, p->qualifier, p->code_path);
    ASSERT_TRUE(decls.ok()) << decls.error().render();
    std::map<std::string, ClassDecl> by_name;
    for (auto& d : *decls) by_name.emplace(d.qualified, d);
    // Every module's class is declared, lists the module's parameters and buffers, and every
    // attribute the class declares is one the module has.
    std::set<std::string> names;
    for (const auto& n : p->modules) {
      auto it = by_name.find(p->qualifier + "." + n.cls);
      ASSERT_NE(it, by_name.end()) << n.cls;
      const ClassDecl& c = it->second;
      EXPECT_EQ(c.super, "Module");
      std::vector<std::string> params, bufs;
      for (const auto& [a, e] : n.params) {
        params.push_back(a);
        names.insert(n.path.empty() ? a : n.path + "." + a);
      }
      for (const auto& [a, e] : n.buffers) bufs.push_back(a);
      EXPECT_EQ(c.parameters, params) << n.path;
      EXPECT_EQ(c.buffers, bufs) << n.path;
      std::set<std::string> have{"training", "_is_full_backward_hook"};
      for (auto& a : params) have.insert(a);
      for (auto& a : bufs) have.insert(a);
      for (size_t ch : n.children) have.insert(p->modules[ch].attr);
      if (n.path.empty()) have.insert("config_json");
      std::set<std::string> declared;
      for (const auto& [a, t] : c.attributes) declared.insert(a);
      EXPECT_EQ(declared, have) << n.path;
      if (n.path.empty()) {
        EXPECT_EQ(c.methods, std::vector<std::string>{"forward"});
      }
    }
    // The parameters are exactly the HF tensors, under their HF names.
    std::set<std::string> want;
    for (const auto& e : m.tensors) want.insert(e.name);
    EXPECT_EQ(names, want);
    EXPECT_TRUE(p->dropped.empty());
  }
}

TEST(TorchScriptEmit, FamilySpecificStatements) {
  auto source = [](const ojson& cfg) {
    const Model m = tiny_model(cfg);
    auto g = graph::build_graph(m);
    EXPECT_TRUE(g.ok());
    auto p = emit_program(*g, m);
    EXPECT_TRUE(p.ok()) << p.error().render();
    return p.ok() ? p->source : std::string();
  };
  // mistral: key j hidden from query i when i - j >= 5
  EXPECT_NE(source(tiny_config("mistral")).find("torch.logical_or(torch.triu(ones, 1), torch.tril(ones, -5))"),
            std::string::npos);
  // qwen2: biases on q/k/v, tied lm_head read inline from the embedding
  const std::string q = source(tiny_config("qwen2"));
  EXPECT_NE(q.find("return torch.linear(input, self.weight, self.bias)"), std::string::npos);
  EXPECT_NE(q.find("torch.linear(norm, self.model.embed_tokens.weight)"), std::string::npos);
  // qwen2 with a window from layer 1 on: one layer class, the root passes each layer its mask
  ojson c = tiny_config("qwen2");
  c["use_sliding_window"] = true;
  c["sliding_window"] = 3;
  c["max_window_layers"] = 1;
  const std::string qw = source(c);
  EXPECT_NE(qw.find("layer_0.forward(embed_tokens, cos, sin, attention_mask)"), std::string::npos);
  EXPECT_NE(qw.find("attention_mask_1 = torch.logical_or(torch.triu(ones, 1), torch.tril(ones, -3))"),
            std::string::npos);
  EXPECT_NE(qw.find("layer_1.forward(hidden_states, cos, sin, attention_mask_1)"), std::string::npos);
  EXPECT_EQ(qw.find("Qwen2DecoderLayer_1"), std::string::npos);
  // minicpm: the three muP scales stay explicit
  const std::string mc = source(tiny_config("minicpm"));
  EXPECT_NE(mc.find("torch.mul(embed_tokens, 12.)"), std::string::npos);
  EXPECT_NE(mc.find("torch.mul(norm, 0.25)"), std::string::npos);  // dim_model_base / hidden
  EXPECT_NE(mc.find(fmt::format("torch.mul(o_proj, {:.17g})", 1.4 / std::sqrt(2.0))), std::string::npos);
  // gpt2: Conv1D [in, out], learned positions, fused qkv sliced
  const std::string gp = source(tiny_config("gpt2"));
  EXPECT_NE(gp.find("return torch.add(torch.matmul(input, self.weight), self.bias)"), std::string::npos);
  EXPECT_NE(gp.find("wpe = self.transformer.wpe.forward(position_ids)"), std::string::npos);
  EXPECT_NE(gp.find("k = torch.slice(c_attn, -1, 64, 128)"), std::string::npos);
}

TEST(TorchScriptEmit, VersionFollowsTheOpsWithUpgraders) {
  EXPECT_EQ(required_version("x = torch.matmul(a, b)"), 3);
  EXPECT_EQ(required_version("x = torch.div(a, b)"), 4);
  EXPECT_EQ(required_version("x = torch.full([2], 1.)\ny = torch.div(a, b)"), 5);
  EXPECT_EQ(required_version("x = torch.linspace(0, 1, 5)"), 8);
  EXPECT_EQ(required_version("x = torch.logspace(0, 1, 5)"), 9);
  EXPECT_EQ(required_version("x = torch.gelu(a)"), 10);
  EXPECT_EQ(required_version("x = torch.divide(a, b)"), 3);  // not aten::div
}

// ---- round trip -----------------------------------------------------------------------------

TEST(TorchScriptRoundTrip, EveryFamilyAndDtypeBitExact) {
  test::TempDir tmp;
  for (const char* fam : kFamilies) {
    for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
      SCOPED_TRACE(std::string(fam) + " " + std::string(dtype_name(dt)));
      Model m = tiny_model(tiny_config(fam), dt, 7);
      m.extra_files.push_back({"tokenizer_config.json", {}, std::string("{\"add_bos_token\": true}\n")});
      const fs::path out = tmp / (std::string(fam) + std::string(dtype_name(dt)) + ".pt");
      auto w = write(m, out);
      ASSERT_TRUE(w.ok()) << w.error().render();
      EXPECT_EQ(w->info["version"], 3);
      auto v = validate_archive(out);
      EXPECT_TRUE(v.ok()) << (v.errors.empty() ? "" : v.errors[0].render());
      EXPECT_EQ(v.info["family"], fam);
      auto r = read_model(out, {});
      ASSERT_TRUE(r.ok()) << r.error().render();
      EXPECT_EQ(r->config_text, m.config_text);
      ASSERT_EQ(r->tensors.size(), m.tensors.size());
      for (const auto& e : m.tensors) {
        const TensorEntry* b = r->tensors.find(e.name);
        ASSERT_NE(b, nullptr) << e.name;
        EXPECT_EQ(b->dtype, e.dtype);
        EXPECT_EQ(b->shape, e.shape);
        EXPECT_TRUE(bytes_of(*b) == bytes_of(e)) << e.name;
      }
      ASSERT_EQ(r->extra_files.size(), 1u);
      EXPECT_EQ(r->extra_files[0].name, "tokenizer_config.json");
      EXPECT_EQ(*r->extra_files[0].content, *m.extra_files[0].content);
    }
  }
}

TEST(TorchScriptRoundTrip, RuntimeRunsTheReadBackModel) {
  test::TempDir tmp;
  const Model m = tiny_model(tiny_config("llama"), DType::F32, 3);
  ASSERT_TRUE(write(m, tmp / "m.pt").ok());
  auto r = read_model(tmp / "m.pt", {});
  ASSERT_TRUE(r.ok());
  auto a = graph::Runtime::load(m, 1), b = graph::Runtime::load(*r, 1);
  ASSERT_TRUE(a.ok() && b.ok());
  const std::vector<int32_t> ids{1, 7, 42, 255};
  auto la = a->forward_all(ids), lb = b->forward_all(ids);
  ASSERT_TRUE(la.ok() && lb.ok());
  EXPECT_EQ(*la, *lb);
}

TEST(TorchScriptRoundTrip, DescribeListsClassesModulesAndParameters) {
  test::TempDir tmp;
  const Model m = tiny_model(tiny_config("gpt2"));
  ASSERT_TRUE(write(m, tmp / "g.pt").ok());
  auto d = describe_archive(tmp / "g.pt", {});
  ASSERT_TRUE(d.ok()) << d.error().render();
  EXPECT_EQ((*d)["root_class"], "__torch__.modelconvert.gpt2.GPT2LMHeadModel");
  EXPECT_EQ((*d)["written_by_modelconvert"], true);
  EXPECT_EQ((*d)["parameters"].size(), m.tensors.size());
  EXPECT_EQ((*d)["buffers"].size(), 0u);
  EXPECT_EQ((*d)["code_files"], ojson::array({"code/__torch__/modelconvert/gpt2.py"}));
  bool found = false;
  for (const auto& mod : (*d)["modules"])
    if (mod["path"] == "transformer.h.1.attn.c_attn") found = mod["class"] == "__torch__.modelconvert.gpt2.Conv1D";
  EXPECT_TRUE(found);
}

TEST(TorchScriptRoundTrip, ResaveKeepsCodeAndTakesTheModelsTensors) {
  // The re-save path of archives we did not write, run here on one of ours.
  test::TempDir tmp;
  const Model m = tiny_model(tiny_config("gpt2"), DType::F32, 5);
  ASSERT_TRUE(write(m, tmp / "a.pt").ok());
  Model r = *read_model(tmp / "a.pt", {});
  // a bf16 copy of every tensor, as --dtype bf16 makes it
  Model cast = r;
  cast.tensors = TensorStore();
  for (const auto& e : r.tensors) {
    auto v = read_f32(e);
    cast.tensors.put(make_tensor_f32(e.name, e.shape, *v, DType::BF16));
  }
  ThreadPool pool(2);
  formats::WriteOptions o;
  o.pool = &pool;
  auto w = resave_archive(cast, tmp / "b.pt", o);
  ASSERT_TRUE(w.ok()) << w.error().render();
  EXPECT_TRUE(w->info.contains("note"));  // the code is unchanged, the dtype is not
  auto b = read_model(tmp / "b.pt", {});
  ASSERT_TRUE(b.ok()) << b.error().render();
  EXPECT_EQ(b->config_text, r.config_text);
  for (const auto& e : cast.tensors) EXPECT_TRUE(bytes_of(*b->tensors.find(e.name)) == bytes_of(e)) << e.name;
  auto za = open_archive(tmp / "a.pt"), zb = open_archive(tmp / "b.pt");
  ASSERT_TRUE(za.ok() && zb.ok());
  EXPECT_EQ(za->classes.size(), zb->classes.size());
  // a tensor of another shape is refused
  Model bad = r;
  bad.tensors.put(make_tensor_f32("transformer.ln_f.bias", {3}, std::vector<float>{1, 2, 3}));
  auto wb = resave_archive(bad, tmp / "c.pt", o);
  ASSERT_FALSE(wb.ok());
  EXPECT_EQ(wb.error().code, ErrorCode::Mismatch);
}

TEST(TorchScriptRoundTrip, ModelWithoutConfigIsRefused) {
  test::TempDir tmp;
  Model m = tiny_model(tiny_config("llama"));
  m.config = ojson::object();
  auto w = write(m, tmp / "x.pt");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, ErrorCode::Unsupported);
}

// ---- malformed archives ---------------------------------------------------------------------

using Records = std::vector<std::pair<std::string, std::string>>;

class TorchScriptMalformed : public ::testing::Test {
 protected:
  void SetUp() override {
    good_ = tmp_ / "good.pt";
    ASSERT_TRUE(write(tiny_model(tiny_config("llama")), good_).ok());
    auto f = io::MappedFile::open(good_.string());
    ASSERT_TRUE(f.ok());
    auto z = torch::ZipReader::open(*f);
    ASSERT_TRUE(z.ok());
    for (const auto& e : z->entries()) {
      auto b = read_record(*z, e, uint64_t(1) << 30);
      ASSERT_TRUE(b.ok());
      records_.emplace_back(e.name, *b);
    }
  }
  // The good archive's records with `edit` applied, written to a new file.
  fs::path variant(const std::string& name, const std::function<void(Records&)>& edit) {
    Records r = records_;
    edit(r);
    const fs::path p = tmp_ / name;
    EXPECT_TRUE(fixtures::write_zip(p, r).ok());
    return p;
  }
  static void drop(Records& r, const std::string& rel) {
    std::erase_if(r, [&](const auto& x) { return x.first == "archive/" + rel; });
  }
  static std::string& record(Records& r, const std::string& rel) {
    for (auto& [n, b] : r)
      if (n == "archive/" + rel) return b;
    static std::string none;
    ADD_FAILURE() << "no record " << rel;
    return none;
  }
  // open_archive's error for `p`: its code and whether the message contains `needle`.
  static void expect_refused(const fs::path& p, ErrorCode code, const std::string& needle) {
    auto a = open_archive(p);
    ASSERT_FALSE(a.ok()) << p;
    EXPECT_EQ(a.error().code, code) << a.error().render();
    EXPECT_NE(a.error().render().find(needle), std::string::npos) << a.error().render();
    EXPECT_NE(a.error().render().find(p.filename().string()), std::string::npos) << "error names the file";
    EXPECT_FALSE(validate_archive(p).ok());
    EXPECT_FALSE(read_model(p, {}).ok());
  }

  test::TempDir tmp_;
  fs::path good_;
  Records records_;
};

TEST_F(TorchScriptMalformed, TheUnmodifiedRecordsReadBack) {
  auto p = variant("same.pt", [](Records&) {});
  EXPECT_TRUE(open_archive(p).ok());
}

TEST_F(TorchScriptMalformed, Truncated) {
  const std::string all = mc::test::slurp(good_);
  for (size_t keep : {all.size() / 2, all.size() - 30, size_t(100)}) {
    const fs::path p = tmp_ / "cut.pt";
    ASSERT_TRUE(io::write_small_file(p, std::string_view(all).substr(0, keep)).ok());
    expect_refused(p, ErrorCode::Corrupt, "truncated");
  }
}

TEST_F(TorchScriptMalformed, MissingConstantsOrVersionOrData) {
  expect_refused(variant("noconst.pt", [](Records& r) { drop(r, "constants.pkl"); }), ErrorCode::Corrupt,
                 "no constants.pkl");
  expect_refused(variant("nover.pt", [](Records& r) { drop(r, "version"); }), ErrorCode::Corrupt,
                 "no 'version' record");
  expect_refused(variant("nodata.pt", [](Records& r) { drop(r, "data.pkl"); }), ErrorCode::Corrupt, "no data.pkl");
  expect_refused(variant("nostorage.pt", [](Records& r) { drop(r, "data/3"); }), ErrorCode::Corrupt,
                 "storage '3' is not in the file");
}

TEST_F(TorchScriptMalformed, VersionOutsideWhatTorchReads) {
  expect_refused(variant("v11.pt", [](Records& r) { record(r, "version") = "11\n"; }), ErrorCode::Unsupported,
                 "version 11");
  expect_refused(variant("vx.pt", [](Records& r) { record(r, "version") = "three\n"; }), ErrorCode::Corrupt,
                 "not a number");
}

TEST_F(TorchScriptMalformed, HostilePicklesAreRefusedNotRun) {
  const fs::path marker = tmp_ / "pwned";
  // data.pkl that would run os.system("touch <marker>") if unpickled by Python
  const std::string cmd = "touch " + marker.string();
  std::string evil = "\x80\x02" "cos\nsystem\nX";
  for (int k = 0; k < 4; ++k) evil.push_back(char((cmd.size() >> (8 * k)) & 0xFF));
  evil += cmd + "\x85R.";
  expect_refused(variant("evil.pt", [&](Records& r) { record(r, "data.pkl") = evil; }), ErrorCode::Corrupt,
                 "'os.system'");
  // the same call hidden as an attribute of the root module
  expect_refused(variant("evil2.pt",
                         [&](Records& r) {
                           std::string& d = record(r, "data.pkl");
                           const std::string key("X\x08\x00\x00\x00training", 13);
                           const size_t at = d.find(key);
                           ASSERT_NE(at, std::string::npos);
                           // training=<os.system(cmd)> instead of False
                           std::string call = "cbuiltins\neval\nX";
                           for (int k = 0; k < 4; ++k) call.push_back(char((cmd.size() >> (8 * k)) & 0xFF));
                           call += cmd + "\x85R";
                           d.replace(at + key.size(), 1, call);
                         }),
                 ErrorCode::Corrupt, "'builtins.eval'");
  // constants.pkl is checked the same way
  expect_refused(variant("evil3.pt", [&](Records& r) { record(r, "constants.pkl") = evil; }), ErrorCode::Corrupt,
                 "constants.pkl references the global 'os.system'");
  EXPECT_FALSE(fs::exists(marker));
}

TEST_F(TorchScriptMalformed, ClassWithoutSourceOrAttributeWithoutValue) {
  expect_refused(variant("nocode.pt", [](Records& r) { drop(r, "code/__torch__/modelconvert/llama.py"); }),
                 ErrorCode::Corrupt, "which no code/ record declares");
  expect_refused(variant("noattr.pt",
                         [](Records& r) {
                           std::string& c = record(r, "code/__torch__/modelconvert/llama.py");
                           const std::string decl = "  config_json : str\n";
                           c.replace(c.find(decl), decl.size(), decl + "  vocab_size : int\n");
                         }),
                 ErrorCode::Corrupt, "declares attribute 'vocab_size' but has no value for it");
  // validate collects every such problem instead of stopping at the first
  auto rep = validate_archive(variant("noattr2.pt", [](Records& r) {
    std::string& c = record(r, "code/__torch__/modelconvert/llama.py");
    for (const std::string cls : {"class Linear(Module):\n", "class Embedding(Module):\n"})
      c.replace(c.find(cls), cls.size(), cls + "  extra_attr : int\n");
  }));
  EXPECT_EQ(rep.errors.size(), 16u);  // 15 Linear modules (lm_head too) and the embedding
}

TEST_F(TorchScriptMalformed, DeflatedCodeIsReadAndCheckedAsTorchWritesIt) {
  // torch.jit.save deflates code records; a plain zip (no alignment) loads too (formats.md §4.5).
  const std::vector<std::string> z{"archive/code/__torch__/modelconvert/llama.py", "archive/constants.pkl"};
  const fs::path ok = tmp_ / "deflated.pt", bad = tmp_ / "damaged.pt";
  ASSERT_TRUE(fixtures::write_zip(ok, records_, z).ok());
  ASSERT_TRUE(fixtures::write_zip(bad, records_, z, /*damage=*/true).ok());
  auto a = open_archive(ok);
  ASSERT_TRUE(a.ok()) << a.error().render();
  EXPECT_EQ(a->parameters.size(), 21u);
  EXPECT_TRUE(validate_archive(ok).ok());
  auto b = open_archive(bad);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, ErrorCode::Corrupt);
}

TEST_F(TorchScriptMalformed, TensorPastItsStorage) {
  auto p = variant("short.pt", [](Records& r) { record(r, "data/1").resize(8); });
  auto a = open_archive(p);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, ErrorCode::Corrupt);
  EXPECT_NE(a.error().render().find("model.layers.0"), std::string::npos) << a.error().render();
}

TEST(TorchScriptDetect, ArchivesAreCertainOtherZipsAreNot) {
  test::TempDir tmp;
  ASSERT_TRUE(write(tiny_model(tiny_config("llama")), tmp / "m.pt").ok());
  EXPECT_EQ(detect(tmp / "m.pt"), formats::Confidence::Certain);
  ASSERT_TRUE(torch::write_torch_file(tiny_model(tiny_config("llama")).tensors, tmp / "sd.pt").ok());
  EXPECT_EQ(detect(tmp / "sd.pt"), formats::Confidence::No);  // a torch.save checkpoint
  EXPECT_EQ(detect(tmp.path()), formats::Confidence::No);
  // and the torch.save reader refuses the archive with a pointer to this engine
  auto t = torch::open_torch_file((tmp / "m.pt").string());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("TorchScript"), std::string::npos);
}

}  // namespace
}  // namespace mc::torchscript
