// GPTQ / AWQ directory writer. Output (what AutoGPTQ/GPTQModel and AutoAWQ save, and what
// transformers, vLLM and their own loaders read):
//   config.json           the source config with "torch_dtype": "float16" and
//                         "quantization_config" (gptq: quant_method, bits, group_size,
//                         damp_percent, desc_act, static_groups, sym, true_sequential,
//                         checkpoint_format; awq: quant_method, bits, group_size, zero_point,
//                         version "gemm", modules_to_not_convert)
//   quantize_config.json  GPTQ only: AutoGPTQ's BaseQuantizeConfig fields
//   model.safetensors     (sharded with an index past --max-shard-size), __metadata__
//                         {"format": "pt"}; every decoder Linear `<m>` as
//                           gptq: <m>.qweight int32 [in*bits/32, out] (packed along the input),
//                                 <m>.qzeros int32 [groups, out*bits/32] (zero - 1 for
//                                 checkpoint_format "gptq", the zero for "gptq_v2"),
//                                 <m>.scales f16 [groups, out], <m>.g_idx int32 [in]
//                           awq:  <m>.qweight int32 [in, out/8], <m>.qzeros int32 [in/g, out/8]
//                                 (interleaved nibbles), <m>.scales f16 [in/g, out]
//                         everything else (embeddings, norms, lm_head, biases) dense f16
//   tokenizer / generation files carried from the input.
// Every request the layout cannot hold is refused (exit 2) before any calibration runs. The
// quantizer works layer by layer; each layer's packed tensors are appended to a spill file in
// the output folder, which the safetensors writer then streams from and which is removed.
#include <cstdio>
#include <cstring>
#include <set>

#include "arch/config.h"
#include "formats/gptq_awq/driver.h"
#include "formats/safetensors/safetensors.h"
#include "io/mapped_file.h"
#include "io/output.h"
#include "quant/blas.h"
#include "quant/pack.h"
#include "transforms/transforms.h"

namespace mc::gptq_awq {

namespace {

constexpr std::string_view kSpillName = ".quant-spill.bin";

struct Spilled {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t offset = 0, nbytes = 0;
};

class Spill {
 public:
  Status open(const fs::path& p) {
    path_ = p;
    f_ = std::fopen(p.c_str(), "wb");
    if (!f_) return make_error(ErrorCode::Io, "cannot create the quantizer's spill file").with_path(p.string());
    return {};
  }
  ~Spill() {
    if (f_) std::fclose(f_);
  }
  Status add(std::string name, DType dt, Shape shape, const void* data, uint64_t nbytes) {
    if (nbytes > 0 && std::fwrite(data, 1, nbytes, f_) != nbytes)
      return make_error(ErrorCode::Io, "writing the quantizer's spill file failed (disk full?)").with_path(path_.string());
    entries_.push_back({std::move(name), dt, std::move(shape), size_, nbytes});
    size_ += nbytes;
    return {};
  }
  Result<io::MappedFilePtr> finish() {
    if (std::fclose(f_) != 0) {
      f_ = nullptr;
      return make_error(ErrorCode::Io, "closing the quantizer's spill file failed").with_path(path_.string());
    }
    f_ = nullptr;
    return io::MappedFile::open(path_.string());
  }
  const std::vector<Spilled>& entries() const { return entries_; }

 private:
  fs::path path_;
  std::FILE* f_ = nullptr;
  uint64_t size_ = 0;
  std::vector<Spilled> entries_;
};

std::vector<uint16_t> f16_of(const std::vector<float>& v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_f16(v[i]);
  return h;
}

// The packed tensors of one quantized Linear, appended to the spill.
Status spill_linear(Spill& sp, Method m, const QuantSpec& spec, const std::string& module, const quant::GroupQuant& q) {
  const int64_t out = q.out, in = q.in, G = q.groups;
  const size_t O = static_cast<size_t>(out), I = static_cast<size_t>(in);
  std::vector<uint32_t> qweight, qzeros;
  if (m == Method::Gptq) {
    const int bits = q.bits;
    qweight.resize(static_cast<size_t>(in * bits / 32) * O);
    for (size_t o = 0; o < O; ++o) quant::pack_stream(q.q.data() + o * I, in, 1, bits, qweight.data() + o, out);
    std::vector<uint8_t> z(q.zeros);
    if (spec.checkpoint_format == "gptq")  // v1 stores zero - 1 (sym zeros are >= 1)
      for (auto& v : z) v = static_cast<uint8_t>((v - 1) & ((1 << bits) - 1));
    qzeros.resize(static_cast<size_t>(G) * static_cast<size_t>(out * bits / 32));
    for (int64_t g = 0; g < G; ++g)
      quant::pack_stream(z.data() + g * out, out, 1, bits, qzeros.data() + g * (out * bits / 32), 1);
    MC_CHECK(sp.add(module + ".qweight", DType::I32, {in * bits / 32, out}, qweight.data(), qweight.size() * 4));
    MC_CHECK(sp.add(module + ".qzeros", DType::I32, {G, out * bits / 32}, qzeros.data(), qzeros.size() * 4));
    const auto sc = f16_of(q.scales);
    MC_CHECK(sp.add(module + ".scales", DType::F16, {G, out}, sc.data(), sc.size() * 2));
    MC_CHECK(sp.add(module + ".g_idx", DType::I32, {in}, q.g_idx.data(), q.g_idx.size() * 4));
    return {};
  }
  qweight.resize(I * O / 8);
  std::vector<uint8_t> row(O);
  for (size_t i = 0; i < I; ++i) {
    for (size_t o = 0; o < O; ++o) row[o] = q.q[o * I + i];
    quant::pack_awq_row(row.data(), out, qweight.data() + i * (O / 8));
  }
  qzeros.resize(static_cast<size_t>(G) * O / 8);
  for (int64_t g = 0; g < G; ++g) quant::pack_awq_row(q.zeros.data() + g * out, out, qzeros.data() + g * (out / 8));
  MC_CHECK(sp.add(module + ".qweight", DType::I32, {in, out / 8}, qweight.data(), qweight.size() * 4));
  MC_CHECK(sp.add(module + ".qzeros", DType::I32, {G, out / 8}, qzeros.data(), qzeros.size() * 4));
  const auto sc = f16_of(q.scales);
  MC_CHECK(sp.add(module + ".scales", DType::F16, {G, out}, sc.data(), sc.size() * 2));
  return {};
}

// Refuses what the layout cannot hold, naming the tensor (exit 2), before any work.
Status check_linear(Method m, const QuantSpec& spec, const std::string& name, int64_t out, int64_t in) {
  auto refuse = [&](std::string msg, std::string hint) {
    return make_error(ErrorCode::InvalidArgument, "{}", msg).with_tensor(name).with_hint(std::move(hint));
  };
  const int64_t g = spec.group_size < 0 ? in : spec.group_size;
  if (in % g != 0)
    return refuse(fmt::format("group_size {} does not divide in_features {}", spec.group_size, in),
                  "pick a group_size that divides every Linear's input width (e.g. 32, 64, 128) or -1 (GPTQ)");
  if (m == Method::Gptq) {
    if (in * spec.bits % 32 != 0 || out * spec.bits % 32 != 0)
      return refuse(fmt::format("{}-bit GPTQ packs 32/{} values per int32 along in_features ({}) and out_features ({})",
                                spec.bits, spec.bits, in, out),
                    "this model's widths cannot be stored at this bit width; GPTQModel wants multiples of 32");
  } else if (out % 8 != 0) {
    return refuse(fmt::format("AWQ packs 8 output columns per int32, out_features {} is not a multiple of 8", out),
                  "this model cannot be stored in AutoAWQ's GEMM layout");
  }
  return {};
}

ojson quantization_config(Method m, const QuantSpec& s) {
  ojson q = ojson::object();
  if (m == Method::Gptq) {
    q["bits"] = s.bits;
    q["group_size"] = s.group_size;
    q["damp_percent"] = s.damp_percent;
    q["desc_act"] = s.desc_act;
    q["static_groups"] = s.static_groups;
    q["sym"] = s.sym;
    q["true_sequential"] = true;
    q["quant_method"] = "gptq";
    q["checkpoint_format"] = s.checkpoint_format;
    return q;
  }
  q["quant_method"] = "awq";
  q["zero_point"] = true;
  q["group_size"] = s.group_size;
  q["bits"] = s.bits;
  q["version"] = "gemm";
  q["modules_to_not_convert"] = nullptr;
  return q;
}

}  // namespace

Result<formats::WriteResult> write_dir(Method m, const Model& model, const fs::path& out,
                                       const formats::WriteOptions& opt) {
  const QuantSpec spec = MC_TRY(parse_spec(m, opt));
  MC_CHECK(blas::load());  // the calibration's matrix products
  if (opt.single_file)
    return make_error(ErrorCode::InvalidArgument, "a {} model is a directory", method_name(m))
        .with_hint("pass -o DIR without a file extension");
  const arch::ArchConfig ac = MC_TRY(arch::from_hf_config(model.config));
  const arch::FamilyInfo* fam = ac.info();
  if (!fam || fam->decoder != arch::Decoder::LlamaLike)
    return make_error(ErrorCode::Unsupported, "{} output is written for llama-like decoders, not '{}'", method_name(m),
                      ac.model_type)
        .with_hint("the llama-like families (llama, mistral, qwen2, minicpm, qwen3, phi3, gemma) can be written as GPTQ/AWQ");
  // Check every Linear before anything runs.
  const graph::Graph g = MC_TRY(graph::build_graph(model));
  const GraphPlan plan = MC_TRY(plan_graph(g));
  std::set<std::string> linears;
  for (const auto& layer : plan.layers)
    for (size_t op : layer.matmuls) {
      const TensorEntry* e = MC_TRY(model.tensors.require(g.ops[op].weight));
      if (e->shape.size() != 2) return make_error(ErrorCode::Unsupported, "a Linear weight of shape {}", shape_str(e->shape)).with_tensor(e->name);
      MC_CHECK(check_linear(m, spec, e->name, e->shape[0], e->shape[1]));
      linears.insert(e->name);
    }
  const Calibration cal = MC_TRY(load_calibration(opt, spec));

  Spill spill;
  MC_CHECK(spill.open(out / kSpillName));
  QuantSink sink;
  sink.put = [&](const std::string& weight, const quant::GroupQuant& q) -> Status {
    return spill_linear(spill, m, spec, weight.substr(0, weight.size() - 7), q);
  };
  const size_t threads = opt.pool ? opt.pool->size() : 1;
  const DriverInfo info = MC_TRY(quantize_model(model, spec, cal, threads, opt.events, sink));
  const io::MappedFilePtr map = MC_TRY(spill.finish());

  // The output tensors, in the source's order: each quantized Linear's packed tensors where its
  // weight was, the rest dense f16.
  std::map<std::string, std::vector<const Spilled*>> by_module;
  for (const auto& s : spill.entries()) by_module[s.name.substr(0, s.name.rfind('.'))].push_back(&s);
  TensorStore store;
  for (const auto& t : model.tensors) {
    if (linears.count(t.name)) {
      for (const Spilled* s : by_module.at(t.name.substr(0, t.name.size() - 7))) {
        TensorEntry e{s->name, s->dtype, s->shape, nullptr};
        e.data = std::make_shared<MemoryData>(map, map->bytes().subspan(s->offset, s->nbytes), true);
        store.put(std::move(e));
      }
      continue;
    }
    if (auto r = sink.replaced.find(t.name); r != sink.replaced.end()) {
      const auto h = f16_of(r->second);
      std::vector<std::byte> bytes(h.size() * 2);
      std::memcpy(bytes.data(), h.data(), bytes.size());
      store.put(TensorEntry{t.name, DType::F16, t.shape, make_owned_data(std::move(bytes))});
      continue;
    }
    store.put(dtype_info(t.dtype).is_float ? MC_TRY(transforms::cast_tensor(t, DType::F16)) : t);
  }
  safetensors::WriteOpts so;
  so.pool = opt.pool;
  if (opt.max_shard_bytes) so.max_shard_bytes = *opt.max_shard_bytes;
  so.sink = opt.progress;
  so.chunk_bytes = opt.chunk_bytes;
  formats::WriteResult res;
  res.files = MC_TRY(safetensors::write(store, out, so));
  const bool one_file = res.files.size() == 1;
  res.tensor_bytes = store.total_bytes();
  std::error_code ec;
  fs::remove(out / kSpillName, ec);

  ojson cfg = model.config;
  cfg["torch_dtype"] = "float16";
  cfg["quantization_config"] = quantization_config(m, spec);
  MC_CHECK(io::write_small_file(out / "config.json", cfg.dump(2) + "\n"));
  res.files.push_back("config.json");
  if (m == Method::Gptq) {
    ojson qc = quantization_config(m, spec);
    qc["model_name_or_path"] = nullptr;
    qc["model_file_base_name"] = one_file ? ojson("model") : ojson(nullptr);
    MC_CHECK(io::write_small_file(out / "quantize_config.json", qc.dump(2) + "\n"));
    res.files.push_back("quantize_config.json");
  }
  for (const auto& f : model.extra_files) {
    if (f.name == "config.json" || f.name == "quantize_config.json") continue;
    if (f.content)
      MC_CHECK(io::write_small_file(out / f.name, *f.content));
    else
      MC_CHECK(io::copy_file(f.source, out / f.name));
    res.files.push_back(f.name);
  }
  double total = info.embed_seconds;
  for (double s : info.layer_seconds) total += s;
  res.info = {{"method", std::string(method_name(m))},
              {"bits", spec.bits},
              {"group_size", spec.group_size},
              {"calibration", {{"source", cal.source},
                               {"samples", cal.seqs.size()},
                               {"seq_len", spec.seq_len},
                               {"text_tokens", cal.available_tokens}}},
              {"quantized_linears", linears.size()},
              {"calibration_seconds", total},
              {"layer_seconds", info.layer_seconds}};
  if (m == Method::Gptq) {
    res.info["desc_act"] = spec.desc_act;
    res.info["sym"] = spec.sym;
    res.info["checkpoint_format"] = spec.checkpoint_format;
    res.info["max_damp_percent_used"] = info.max_damp_percent;
  }
  return res;
}

}  // namespace mc::gptq_awq
