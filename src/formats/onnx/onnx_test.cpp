// The ONNX engine without third-party clients: write -> read back (weights byte-identical, the
// reference runtime gives the same logits), external data layout, fp16, optimum's MatMul
// naming, validation, and refusals of malformed files with the file named.
#include <gtest/gtest.h>

#include <fstream>

#include "formats/onnx/emit.h"
#include "formats/onnx/onnx.h"
#include "graph/runtime.h"
#include "graph/test_support.h"
#include "testutil.h"
#include "transforms/transforms.h"

namespace mc::onnx {
namespace {

struct Written {
  test::TempDir dir;
  Result<formats::WriteResult> res = make_error(ErrorCode::Internal, "not written");
};

std::unique_ptr<Written> write(const Model& m, ojson quant_config = nullptr, std::optional<DType> dtype = std::nullopt) {
  auto w = std::make_unique<Written>();
  ThreadPool pool(2);
  formats::WriteOptions wo;
  wo.pool = &pool;
  wo.quant_config = std::move(quant_config);
  wo.dtype = dtype;
  wo.chunk_bytes = 4096;  // several chunks per tensor
  w->res = write_dir(m, w->dir.path(), wo);
  return w;
}

Model tiny() { return graph::test::synthetic_llama({}); }

TEST(Onnx, WriteThenReadGivesTheSameWeightsAndLogits) {
  const Model src = tiny();
  auto w = write(src);
  ASSERT_TRUE(w->res.ok()) << w->res.error().render();
  EXPECT_FALSE(fs::exists(w->dir / "onnx/model.onnx_data"));
  auto back = read_model(w->dir.path(), {});
  ASSERT_TRUE(back.ok()) << back.error().render();
  ASSERT_EQ(back->tensors.size(), src.tensors.size());
  for (const auto& e : src.tensors) {
    const TensorEntry* b = back->tensors.find(e.name);
    ASSERT_NE(b, nullptr) << e.name;
    EXPECT_EQ(b->shape, e.shape) << e.name;
    EXPECT_EQ(*read_all(*b), *read_all(e)) << e.name;
  }
  const std::vector<int32_t> ids{1, 7, 3, 50, 9};
  auto ra = graph::Runtime::load(src, 1);
  auto rb = graph::Runtime::load(*back, 1);
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_EQ(*ra->forward_all(ids), *rb->forward_all(ids));
  auto v = validate(w->dir.path());
  EXPECT_TRUE(v.ok()) << (v.errors.empty() ? "" : v.errors[0].render());
  EXPECT_EQ(v.info["architecture"], "llama");
  EXPECT_EQ(v.info["kv_cache_layers"], 2);
}

TEST(Onnx, ExternalDataOnRequestWithAlignedOffsets) {
  const Model src = tiny();
  auto w = write(src, ojson{{"external_data", true}});
  ASSERT_TRUE(w->res.ok()) << w->res.error().render();
  ASSERT_TRUE(fs::exists(w->dir / "onnx/model.onnx_data"));
  auto om = open_model(w->dir / "onnx/model.onnx");
  ASSERT_TRUE(om.ok()) << om.error().render();
  size_t external = 0;
  for (const auto& t : om->model.inits) {
    if (!t.external) {  // only small constants stay inline (ORT refuses external shape/axes tensors)
      EXPECT_TRUE(t.name.starts_with("const/")) << t.name;
      continue;
    }
    ++external;
    EXPECT_EQ(t.location, "model.onnx_data");
    ASSERT_TRUE(t.ext_offset.has_value());
    EXPECT_EQ(*t.ext_offset % kExternalAlign, 0u) << t.name;
  }
  EXPECT_EQ(external, src.tensors.size());
  auto cfg = test::read_json_file(w->dir / "config.json");
  ASSERT_TRUE(cfg.has_value());
  EXPECT_EQ((*cfg)["transformers.js_config"]["use_external_data_format"]["model.onnx"], 1);
  auto back = read_model(w->dir.path(), {});
  ASSERT_TRUE(back.ok()) << back.error().render();
  for (const auto& e : src.tensors) EXPECT_EQ(*read_all(*back->tensors.find(e.name)), *read_all(e)) << e.name;
  EXPECT_FALSE(back->config.contains("transformers.js_config"));  // ours, not carried further
  EXPECT_TRUE(back->config_modified);
  // Forcing inline is fine for a small model.
  auto w2 = write(src, ojson{{"external_data", false}});
  ASSERT_TRUE(w2->res.ok());
  EXPECT_FALSE(fs::exists(w2->dir / "onnx/model.onnx_data"));
}

TEST(Onnx, Fp16StoresHalfWeightsAndCastsThem) {
  const Model src = tiny();
  auto w = write(src, nullptr, DType::F16);
  ASSERT_TRUE(w->res.ok()) << w->res.error().render();
  ASSERT_TRUE(fs::exists(w->dir / "onnx/model_fp16.onnx"));
  EXPECT_FALSE(fs::exists(w->dir / "onnx/model.onnx"));
  auto om = open_model(w->dir / "onnx/model_fp16.onnx");
  ASSERT_TRUE(om.ok());
  size_t casts = 0;
  for (const auto& n : om->model.nodes) casts += n.op_type == "Cast" && n.inputs[0] == "lm_head.weight";
  EXPECT_EQ(casts, 1u);
  auto back = read_model(w->dir.path(), {});
  ASSERT_TRUE(back.ok()) << back.error().render();
  const TensorEntry* e = back->tensors.find("model.layers.1.mlp.up_proj.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->dtype, DType::F16);
  const auto a = *read_f32(*e), b = *read_f32(*src.tensors.find(e->name));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], f16_to_f32(f32_to_f16(b[i])));
}

TEST(Onnx, RefusesWhatItCannotWrite) {
  const Model src = tiny();
  auto bf = write(src, nullptr, DType::BF16);
  ASSERT_FALSE(bf->res.ok());
  EXPECT_EQ(bf->res.error().code, ErrorCode::InvalidArgument);
  auto key = write(src, ojson{{"bits", 4}});
  ASSERT_FALSE(key->res.ok());
  EXPECT_EQ(key->res.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(key->res.error().message.find("bits"), std::string::npos);
  Model unknown = src;
  unknown.config["model_type"] = "mamba";
  unknown.config["architectures"] = {"MambaForCausalLM"};
  auto u = write(unknown);
  ASSERT_FALSE(u->res.ok());
  EXPECT_EQ(u->res.error().code, ErrorCode::Unsupported);
}

// optimum stores Linear weights transposed under "onnx::MatMul_N", read by a MatMul node named
// after the module.
TEST(Onnx, ReadsOptimumMatMulNamesBackTransposed) {
  test::TempDir dir;
  const std::vector<float> w_in_out{1, 2, 3, 4, 5, 6};  // [in=2, out=3]
  TensorEntry w = make_tensor_f32("onnx::MatMul_7", {2, 3}, w_in_out);
  TensorEntry n = make_tensor_f32("model.norm.weight", {2}, std::vector<float>{1, 1});
  GraphOut g;
  g.inits.push_back({.name = w.name, .data_type = kFloat, .dims = w.shape, .source = &w});
  g.inits.push_back({.name = n.name, .data_type = kFloat, .dims = n.shape, .source = &n});
  g.inits.push_back({.name = "/model/Constant_output_0", .data_type = kInt64, .dims = {1}, .inline_bytes = std::string(8, '\0')});
  g.inputs.push_back({"x", kFloat, {Dim{int64_t{1}}, Dim{int64_t{2}}}});
  g.outputs.push_back({"y", kFloat, {Dim{int64_t{1}}, Dim{int64_t{3}}}});
  g.nodes.push_back({.op_type = "MatMul", .name = "/model/layers.0/self_attn/q_proj/MatMul", .inputs = {"x", w.name}, .outputs = {"y"}});
  const pb::Msg msg = encode_model({}, g, nullptr);
  const pb::Placed p = pb::place(msg);
  std::string file(msg.size(), '\0');
  for (const auto& piece : p.pieces) file.replace(piece.file_offset, piece.bytes.size(), piece.bytes);
  for (const auto& [id, off] : p.holes) {
    auto b = *read_all(*g.inits[id].source);
    file.replace(off, b.size(), reinterpret_cast<const char*>(b.data()), b.size());
  }
  std::ofstream(dir / "model.onnx", std::ios::binary) << file;
  std::ofstream(dir / "config.json") << R"({"model_type": "llama"})";
  auto m = read_model(dir / "model.onnx", {});
  ASSERT_TRUE(m.ok()) << m.error().render();
  ASSERT_EQ(m->tensors.size(), 2u);
  const TensorEntry* q = m->tensors.find("model.layers.0.self_attn.q_proj.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->shape, (Shape{3, 2}));
  EXPECT_EQ(*read_f32(*q), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  // A node reading a value nobody defines is a validation error.
  g.nodes[0].inputs[0] = "undefined_value";
  const pb::Msg bad = encode_model({}, g, nullptr);
  std::string bad_file(bad.size(), '\0');
  for (const auto& piece : pb::place(bad).pieces) bad_file.replace(piece.file_offset, piece.bytes.size(), piece.bytes);
  std::ofstream(dir / "bad.onnx", std::ios::binary) << bad_file;
  auto v = validate(dir / "bad.onnx");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.errors[0].message.find("undefined_value"), std::string::npos) << v.errors[0].render();
}

TEST(Onnx, MalformedFilesAreRefusedNamingTheFile) {
  const Model src = tiny();
  auto w = write(src, ojson{{"external_data", true}});
  ASSERT_TRUE(w->res.ok());
  const fs::path model = w->dir / "onnx/model.onnx", data = w->dir / "onnx/model.onnx_data";
  const std::string bytes = test::slurp(model), data_bytes = test::slurp(data);
  auto expect_error = [&](ErrorCode code, const std::string& file_in_message_or_path) {
    auto m = read_model(w->dir.path(), {});
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.error().code, code) << m.error().render();
    EXPECT_NE(m.error().render().find(file_in_message_or_path), std::string::npos) << m.error().render();
    EXPECT_FALSE(validate(w->dir.path()).ok());
  };
  std::ofstream(model, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  expect_error(ErrorCode::Truncated, "model.onnx");
  std::ofstream(model, std::ios::binary | std::ios::trunc) << std::string("\x0f\xff\xff not protobuf");
  expect_error(ErrorCode::Corrupt, "model.onnx");
  std::ofstream(model, std::ios::binary | std::ios::trunc) << bytes;
  fs::remove(data);
  expect_error(ErrorCode::NotFound, "model.onnx_data");
  std::ofstream(data, std::ios::binary | std::ios::trunc) << data_bytes.substr(0, data_bytes.size() - 100);
  expect_error(ErrorCode::Truncated, "model.onnx_data");
}

TEST(Onnx, EmitterDeclaresTheTransformersJsContract) {
  const Model src = tiny();
  auto g = graph::build_graph(src);
  ASSERT_TRUE(g.ok());
  auto go = emit_decoder(*g, src.tensors);
  ASSERT_TRUE(go.ok()) << go.error().render();
  ASSERT_EQ(go->inputs.size(), 3u + 4u);
  EXPECT_EQ(go->inputs[3].name, "past_key_values.0.key");
  // kv heads and head dim concrete, batch and lengths symbolic
  EXPECT_EQ(go->inputs[3].dims, (std::vector<Dim>{"batch_size", int64_t{2}, "past_sequence_length", int64_t{8}}));
  EXPECT_EQ(go->outputs[0].name, "logits");
  EXPECT_EQ(go->outputs[0].dims, (std::vector<Dim>{"batch_size", "sequence_length", int64_t{96}}));
  EXPECT_EQ(go->outputs[4].name, "present.1.value");
  for (const auto& in : go->inits)
    if (!in.source) {
      EXPECT_LE(in.inline_bytes.size(), 512u) << in.name;
    }
}

// Every family's graph emits into a file that validates (defined inputs, topological order,
// cache pairs, weights fitting the architecture) and reads back with the same tensor names.
TEST(Onnx, EveryFamilyExportsValidatesAndReadsBack) {
  const ojson llama_like = {{"vocab_size", 64}, {"hidden_size", 32}, {"intermediate_size", 48},
                            {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                            {"max_position_embeddings", 64}, {"rms_norm_eps", 1e-5}, {"bos_token_id", 1},
                            {"eos_token_id", 2}};
  std::vector<ojson> configs;
  for (const char* t : {"llama", "mistral", "qwen2", "minicpm", "qwen3", "phi3", "gemma"}) {
    ojson c = llama_like;
    c["model_type"] = t;
    if (std::string_view(t) == "qwen3" || std::string_view(t) == "gemma") c["head_dim"] = 16;
    if (std::string_view(t) == "mistral") c["sliding_window"] = 8;
    if (std::string_view(t) == "minicpm") {
      c["scale_emb"] = 12;
      c["scale_depth"] = 1.4;
      c["dim_model_base"] = 16;
    }
    configs.push_back(c);
  }
  configs.push_back({{"model_type", "gpt2"}, {"vocab_size", 64}, {"n_embd", 32}, {"n_layer", 2}, {"n_head", 4},
                     {"n_positions", 32}, {"activation_function", "gelu_new"}});
  for (const ojson& c : configs) {
    Model m;
    m.config = c;
    transforms::FakeOptions fo;
    fo.seed = 3;
    auto fake = transforms::fake_weights(m, fo);
    ASSERT_TRUE(fake.ok()) << fake.error().render();
    auto w = write(*fake);
    ASSERT_TRUE(w->res.ok()) << c["model_type"] << ": " << w->res.error().render();
    auto v = validate(w->dir.path());
    EXPECT_TRUE(v.ok()) << c["model_type"] << ": " << (v.errors.empty() ? "" : v.errors[0].render());
    auto back = read_model(w->dir.path(), {});
    ASSERT_TRUE(back.ok()) << back.error().render();
    auto g = graph::build_graph(*back);
    ASSERT_TRUE(g.ok()) << g.error().render();
    EXPECT_TRUE(graph::check_weights(*g, back->tensors).ok()) << c["model_type"];
    if (c["model_type"] == "minicpm") {
      EXPECT_EQ(back->config["model_type"], "llama");
    }
  }
}

TEST(Onnx, CliMalformedInputExitsWithTheTableCodeAndWritesNothing) {
  test::TempDir dir;
  std::ofstream(dir / "model.onnx", std::ios::binary) << std::string("\x08\x08\x3a\xff\x01 cut", 8);
  std::ofstream(dir / "config.json") << R"({"model_type": "llama"})";
  const auto r = test::mc_run("convert " + test::q(dir / "model.onnx") + " safetensors -o " + test::q(dir / "out"));
  EXPECT_EQ(r.rc, 6) << r.out;
  EXPECT_NE(r.out.find("model.onnx"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir / "out"));
  const auto v = test::mc_run("validate " + test::q(dir / "model.onnx"));
  EXPECT_NE(v.rc, 0) << v.out;
}

}  // namespace
}  // namespace mc::onnx
