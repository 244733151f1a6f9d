// ONNX directory writer (layout in onnx.h). Steps: MiniCPM is folded to plain Llama first
// (transforms::mup_to_llama; Transformers.js has no minicpm class); weights are cast lazily to
// f32 (default) or f16 (--dtype fp16); the runtime's graph is built and emitted (emit.h); the
// ModelProto is encoded with each weight as a hole (inline raw_data) or an external_data
// reference, and io::write_tensors streams the weights into the holes or into model.onnx_data at
// 4096-aligned offsets. Memory stays at the encoded graph (kilobytes per layer) plus the
// writer's chunks in flight.
// Weights go external when the ModelProto would pass 2 GiB, or when --quant-config asks
// {"external_data": true}; {"external_data": false} refuses a model that cannot be inline.
#include <algorithm>

#include "arch/config.h"
#include "formats/onnx/emit.h"
#include "formats/onnx/onnx.h"
#include "io/output.h"
#include "io/stream_writer.h"
#include "tokenizer/loaders.h"
#include "transforms/transforms.h"

namespace mc::onnx {

namespace {

// Tokenizer and generation files carried from the source unless written here.
constexpr std::string_view kCarried[] = {"tokenizer.model",   "added_tokens.json",   "vocab.json",
                                         "merges.txt",        "chat_template.jinja", "chat_template.json",
                                         "LICENSE"};

Result<std::optional<bool>> external_option(const ojson& qc) {
  if (qc.is_null() || (qc.is_object() && qc.empty())) return std::optional<bool>();
  if (!qc.is_object())
    return make_error(ErrorCode::InvalidArgument, "--quant-config must be a JSON object for onnx")
        .with_hint(R"(the onnx writer takes --quant-config '{"external_data": true}')");
  std::optional<bool> ext;
  for (auto it = qc.begin(); it != qc.end(); ++it) {
    if (it.key() == "external_data" && it.value().is_boolean()) {
      ext = it.value().get<bool>();
      continue;
    }
    return make_error(ErrorCode::InvalidArgument, "onnx does not take --quant-config key '{}'", it.key())
        .with_hint(R"(the onnx writer takes only {"external_data": true|false} (ONNX export is not quantized))");
  }
  return ext;
}

std::string source_text(const ExtraFile& f) {
  if (f.content) return *f.content;
  auto t = io::read_text_file(f.source.string(), 256u << 20);
  return t ? *t : std::string();
}

// tokenizer.json (+ tokenizer_config.json, special_tokens_map.json) for Transformers.js: carried
// when the source has them, converted from tokenizer.model / vocab.json + merges.txt otherwise.
Status write_tokenizer(const Model& m, const fs::path& out, formats::WriteResult& res) {
  const ExtraFile* tj = m.find_extra("tokenizer.json");
  const ExtraFile* tc = m.find_extra("tokenizer_config.json");
  const ExtraFile* sm = m.find_extra("special_tokens_map.json");
  auto put = [&](const std::string& name, const ExtraFile* f, const std::string& text) -> Status {
    if (f && !f->content) MC_CHECK(io::copy_file(f->source, out / name));
    else MC_CHECK(io::write_small_file(out / name, f ? *f->content : text));
    res.files.push_back(name);
    return {};
  };
  std::optional<tok::Vocab> vocab;
  const ExtraFile* spm = m.find_extra("tokenizer.model");
  const ExtraFile* vj = m.find_extra("vocab.json");
  const ExtraFile* mt = m.find_extra("merges.txt");
  if (!tj || !sm) {
    Result<tok::Vocab> v = make_error(ErrorCode::NotFound, "no tokenizer");
    if (tj) v = tok::parse_tokenizer_json(source_text(*tj), "tokenizer.json");
    else if (spm && !spm->content) v = tok::load_sentencepiece_model(spm->source.string());
    else if (vj && mt && !vj->content && !mt->content) v = tok::load_vocab_merges(vj->source.string(), mt->source.string());
    if (v && tc) MC_CHECK(tok::apply_tokenizer_config(*v, source_text(*tc), "tokenizer_config.json"));
    if (v) vocab = std::move(*v);
    else if (v.error().code != ErrorCode::NotFound) return std::move(v).error();
  }
  std::optional<tok::HfTokenizerFiles> made;
  if (!tj && vocab) {
    auto f = tok::vocab_to_hf(*vocab);
    if (!f) return std::move(f).error().with_hint("the source tokenizer cannot be written as tokenizer.json");
    made = std::move(*f);
  }
  if (tj) MC_CHECK(put("tokenizer.json", tj, ""));
  else if (made) MC_CHECK(put("tokenizer.json", nullptr, made->tokenizer_json));
  const bool have_json = tj || made;
  // Transformers.js needs tokenizer.json whenever tokenizer_config.json is there.
  if (have_json && tc) MC_CHECK(put("tokenizer_config.json", tc, ""));
  else if (have_json && made) MC_CHECK(put("tokenizer_config.json", nullptr, made->tokenizer_config_json));
  if (sm) {
    MC_CHECK(put("special_tokens_map.json", sm, ""));
  } else if (vocab && have_json) {
    ojson j = ojson::object();
    auto name = [&](const char* key, int32_t id) {
      if (id >= 0 && static_cast<size_t>(id) < vocab->tokens.size()) j[key] = vocab->tokens[static_cast<size_t>(id)];
    };
    name("bos_token", vocab->bos_id);
    name("eos_token", vocab->eos_id);
    name("unk_token", vocab->unk_id);
    name("pad_token", vocab->pad_id);
    MC_CHECK(put("special_tokens_map.json", nullptr, j.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n"));
  }
  return {};
}

// generation_config.json: carried, else the ids config.json gives (Transformers.js reads it).
Status write_generation_config(const Model& m, const fs::path& out, formats::WriteResult& res) {
  if (const ExtraFile* g = m.find_extra("generation_config.json")) {
    if (g->content) MC_CHECK(io::write_small_file(out / g->name, *g->content));
    else MC_CHECK(io::copy_file(g->source, out / g->name));
  } else {
    ojson j = ojson::object();
    for (const char* k : {"bos_token_id", "eos_token_id", "pad_token_id"})
      if (auto it = m.config.find(k); it != m.config.end() && !it->is_null()) j[k] = *it;
    MC_CHECK(io::write_small_file(out / "generation_config.json", j.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n"));
  }
  res.files.push_back("generation_config.json");
  return {};
}

}  // namespace

Result<formats::WriteResult> write_dir(const Model& input, const fs::path& out, const formats::WriteOptions& opt) {
  if (!opt.pool) return make_error(ErrorCode::Internal, "ONNX writer called without a thread pool");
  const std::optional<bool> ext_opt = MC_TRY(external_option(opt.quant_config));
  DType target = DType::F32;
  if (opt.dtype) {
    if (*opt.dtype != DType::F32 && *opt.dtype != DType::F16)
      return make_error(ErrorCode::InvalidArgument, "ONNX export writes fp32 or fp16 weights, not {}", dtype_name(*opt.dtype))
          .with_hint("pass --dtype fp32 or --dtype fp16 (onnxruntime's CPU kernels have no bf16 MatMul)");
    target = *opt.dtype;
  }
  const arch::ArchConfig ac0 = MC_TRY(arch::from_hf_config(input.config));
  if (ac0.family == arch::Family::Unknown)
    return make_error(ErrorCode::Unsupported, "model_type '{}' has no ONNX graph", ac0.model_type)
        .with_hint("ONNX export knows llama, mistral, qwen2, minicpm and gpt2");
  Model m = ac0.is_mup() ? MC_TRY(transforms::mup_to_llama(input)) : input;
  m = MC_TRY(transforms::cast(m, target));
  const graph::Graph g = MC_TRY(graph::build_graph(m));
  const GraphOut go = MC_TRY(emit_decoder(g, m.tensors));

  ModelMeta meta;
  meta.opset = kOpset;
  const std::string model_name = target == DType::F16 ? "model_fp16.onnx" : "model.onnx";
  const std::string data_name = model_name + "_data";
  uint64_t weight_bytes = 0;
  for (const auto& in : go.inits)
    if (in.source) weight_bytes += in.source->nbytes();
  const pb::Msg bare = encode_model(meta, go, nullptr);
  bool external = bare.size() > kProtoLimit;
  if (ext_opt) {
    if (!*ext_opt && external)
      return make_error(ErrorCode::InvalidArgument, "the model is {} bytes; a single .onnx file holds at most {}",
                        bare.size(), kProtoLimit)
          .with_hint(R"(drop {"external_data": false}: weights past 2 GB must go to model.onnx_data)");
    external = *ext_opt;
  }

  formats::WriteResult res;
  std::error_code ec;
  fs::create_directories(out / "onnx", ec);
  if (ec) return make_error(ErrorCode::Io, "cannot create {}: {}", (out / "onnx").string(), ec.message());
  std::vector<io::WriteItem> items;
  std::optional<io::OutFile> data_file;
  ExternalPlan plan;
  if (external) {
    plan.location = data_name;
    plan.offset_length.resize(go.inits.size());
    uint64_t off = 0;
    for (size_t i = 0; i < go.inits.size(); ++i) {
      if (!go.inits[i].source) continue;
      off = (off + kExternalAlign - 1) / kExternalAlign * kExternalAlign;
      plan.offset_length[i] = {off, go.inits[i].source->nbytes()};
      off += go.inits[i].source->nbytes();
    }
    data_file.emplace(MC_TRY(io::OutFile::create(out / "onnx" / data_name, off)));
  }
  const pb::Msg msg = external ? encode_model(meta, go, &plan) : bare;
  if (msg.size() > kProtoLimit)
    return make_error(ErrorCode::LimitExceeded, "the ONNX graph alone is {} bytes, over protobuf's 2 GiB", msg.size());
  io::OutFile model_file = MC_TRY(io::OutFile::create(out / "onnx" / model_name, msg.size()));
  const pb::Placed placed = pb::place(msg);
  for (const auto& p : placed.pieces)
    MC_CHECK(model_file.pwrite(p.file_offset, std::as_bytes(std::span(p.bytes.data(), p.bytes.size()))));
  if (external) {
    for (size_t i = 0; i < go.inits.size(); ++i)
      if (go.inits[i].source) items.push_back({go.inits[i].source, &*data_file, plan.offset_length[i].first});
  } else {
    for (const auto& [id, off] : placed.holes) items.push_back({go.inits[id].source, &model_file, off});
  }
  io::StreamOptions so;
  so.chunk_bytes = opt.chunk_bytes;
  so.sink = opt.progress;
  MC_CHECK(io::write_tensors(items, *opt.pool, so));
  MC_CHECK(model_file.close());
  res.files.push_back("onnx/" + model_name);
  if (data_file) {
    MC_CHECK(data_file->close());
    res.files.push_back("onnx/" + data_name);
  }
  res.tensor_bytes = weight_bytes;

  ojson cfg = m.config;
  if (external) cfg["transformers.js_config"] = {{"use_external_data_format", {{model_name, 1}}}};
  MC_CHECK(io::write_small_file(out / "config.json", cfg.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n"));
  res.files.push_back("config.json");
  MC_CHECK(write_generation_config(m, out, res));
  MC_CHECK(write_tokenizer(m, out, res));
  for (auto name : kCarried) {
    const ExtraFile* f = m.find_extra(name);
    if (!f) continue;
    if (f->content) MC_CHECK(io::write_small_file(out / f->name, *f->content));
    else MC_CHECK(io::copy_file(f->source, out / f->name));
    res.files.push_back(f->name);
  }
  res.info["onnx_file"] = "onnx/" + model_name;
  res.info["external_data"] = external;
  res.info["opset"] = meta.opset;
  res.info["nodes"] = go.nodes.size();
  res.info["dtype"] = std::string(dtype_name(target));
  res.info["model_type"] = m.config.value("model_type", "");
  if (ac0.is_mup()) res.info["note"] = "MiniCPM muP folded into plain Llama weights (model_type llama)";
  return res;
}

}  // namespace mc::onnx
