// Fake weights: a model with the right tensor names/shapes/dtypes whose values are generated on
// demand (zeros, or a seeded near-normal stream), for testing pipelines without real checkpoints.
// The PRNG is counter-based, so any chunk of any tensor can be produced independently and the
// values do not depend on how a writer splits its reads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "arch/config.h"
#include "io/mapped_file.h"
#include "transforms/rows.h"
#include "arch/config.h"
#include "transforms/transforms.h"

namespace mc::transforms {
using arch::is_norm_param;

namespace {

constexpr int64_t kMaxDims = 8;
constexpr int64_t kMaxShapeEntries = 1'000'000;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) {
    h ^= uint8_t(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

// lowbias32 (a 32-bit integer hash with good avalanche: xor-shift, multiply, twice).
inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  x ^= x >> 16;
  return x;
}

// The random values (transforms.h): element i of stream `key` is the sum S of the four 16-bit
// halves of a = mix32(c ^ ka) and b = mix32(c ^ kb), c = low 32 bits of i, (ka, kb) = the two
// halves of splitmix64(key ^ (i >> 32)); value = float(S - 131070) * scale (float32 multiply).
// S is an Irwin-Hall sum of 4 uniforms: mean 131070, standard deviation
// sqrt((65536^2 - 1) / 3), so the values are near-normal with the standard deviation asked for.
// Blocks of 64 let the compiler vectorize the loop; target_clones adds an AVX2 copy (8 lanes)
// chosen at load time. tests/py/fake_random_oracle.py computes the same values independently.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("avx2", "default")))
#endif
void random_block(uint32_t ka, uint32_t kb, uint32_t c0, uint64_t n, float scale, float* out) {
  uint64_t j = 0;
  for (; j + 64 <= n; j += 64) {
    for (uint32_t t = 0; t < 64; ++t) {
      const uint32_t c = c0 + uint32_t(j) + t;
      const uint32_t a = mix32(c ^ ka), b = mix32(c ^ kb);
      const uint32_t sum = (a & 0xFFFFu) + (a >> 16) + (b & 0xFFFFu) + (b >> 16);
      out[j + t] = float(int32_t(sum) - 131070) * scale;
    }
  }
  for (; j < n; ++j) {
    const uint32_t c = c0 + uint32_t(j);
    const uint32_t a = mix32(c ^ ka), b = mix32(c ^ kb);
    const uint32_t sum = (a & 0xFFFFu) + (a >> 16) + (b & 0xFFFFu) + (b >> 16);
    out[j] = float(int32_t(sum) - 131070) * scale;
  }
}

void random_values(uint64_t key, float scale, uint64_t first, uint64_t count, float* out) {
  while (count > 0) {
    const uint64_t hi = first >> 32;
    const uint64_t k = splitmix64(key ^ hi);
    const uint64_t n = std::min(count, ((hi + 1) << 32) - first);  // up to the next 2^32
    random_block(uint32_t(k), uint32_t(k >> 32), uint32_t(first), n, scale, out);
    first += n;
    count -= n;
    out += n;
  }
}

enum class Fill { Zero, One, Random };

TensorDataPtr make_fake_data(DType dtype, uint64_t numel, Fill fill, uint64_t key, float stddev) {
  if (is_quantized(dtype) || !dtype_info(dtype).is_float) fill = Fill::Zero;  // all-zero bytes
  const size_t esz = is_quantized(dtype) ? 1 : dtype_size(dtype);
  const uint64_t n_units = is_quantized(dtype) ? numel / dtype_info(dtype).block_elems *
                                                     dtype_info(dtype).block_bytes
                                               : numel;
  // Standard deviation of S (random_block) = sqrt((65536^2 - 1) / 3).
  const float scale = float(double(stddev) / std::sqrt((65536.0 * 65536.0 - 1.0) / 3.0));
  return make_fn_data(
      [=](uint64_t offset, std::span<std::byte> dst) -> Status {
        return read_elementwise(offset, dst, esz, n_units,
                                [&](uint64_t first, uint64_t count, std::byte* out) -> Status {
                                  if (fill == Fill::Zero) {
                                    std::memset(out, 0, count * esz);
                                    return {};
                                  }
                                  // Every element is written: no zero-filling first.
                                  std::unique_ptr<float[]> v(new float[count]);
                                  if (fill == Fill::One)
                                    std::fill(v.get(), v.get() + count, 1.0f);
                                  else
                                    random_values(key, scale, first, count, v.get());
                                  from_f32(v.get(), dtype, out, count);
                                  return {};
                                });
      },
      esz);
}

struct Spec {
  std::string name;
  Shape shape;
  DType dtype;
};

Error shapes_error(const std::string& path, const std::string& name, std::string msg) {
  return make_error(ErrorCode::InvalidArgument, "shapes file: {}", msg)
      .with_path(path)
      .with_tensor(name)
      .with_hint("write {\"name\": [dim, ...]} or {\"name\": {\"shape\": [dim, ...], \"dtype\": \"f16\"}}");
}

Result<std::vector<Spec>> specs_from_shapes(const ojson& j, DType dflt) {
  if (!j.is_object()) return shapes_error("", "", "the top level must be an object of tensors");
  if (j.size() > size_t(kMaxShapeEntries))
    return shapes_error("", "", fmt::format("{} entries, more than the {} allowed", j.size(), kMaxShapeEntries));
  std::vector<Spec> out;
  for (const auto& [name, v] : j.items()) {
    const ojson* dims = &v;
    DType dt = dflt;
    if (v.is_object()) {
      auto s = v.find("shape");
      if (s == v.end()) return shapes_error("", name, "entry has no \"shape\"");
      dims = &*s;
      if (auto d = v.find("dtype"); d != v.end()) {
        if (!d->is_string()) return shapes_error("", name, "\"dtype\" must be a string");
        auto parsed = dtype_from_name(d->get<std::string>());
        if (!parsed) return shapes_error("", name, fmt::format("unknown dtype '{}'", d->get<std::string>()));
        dt = *parsed;
      }
    }
    if (!dims->is_array() || dims->size() > size_t(kMaxDims))
      return shapes_error("", name, fmt::format("shape must be a list of at most {} dims", kMaxDims));
    Shape shape;
    for (const auto& d : *dims) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        return shapes_error("", name, "dims must be non-negative integers");
      shape.push_back(d.get<int64_t>());
    }
    const uint64_t numel = MC_TRY(shape_numel(shape));
    auto nb = dtype_nbytes(dt, numel);
    if (!nb) return shapes_error("", name, std::move(nb).error().message);
    out.push_back({name, std::move(shape), dt});
  }
  return out;
}

ojson yaml_to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      ojson o = ojson::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = yaml_to_json(kv.second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      ojson a = ojson::array();
      for (const auto& v : n) a.push_back(yaml_to_json(v));
      return a;
    }
    case YAML::NodeType::Scalar: {
      const std::string s = n.Scalar();
      try {
        size_t used = 0;
        const long long v = std::stoll(s, &used);
        if (used == s.size()) return ojson(int64_t(v));
      } catch (const std::exception&) {
      }
      return ojson(s);
    }
    default:
      return ojson();
  }
}

}  // namespace

Result<ojson> parse_shapes_text(std::string_view text, bool yaml, const std::string& path) {
  try {
    if (yaml) return yaml_to_json(YAML::Load(std::string(text)));
    return ojson::parse(text);
  } catch (const std::exception& ex) {
    return make_error(ErrorCode::InvalidArgument, "shapes file does not parse: {}", ex.what())
        .with_path(path)
        .with_hint(yaml ? "fix the YAML syntax" : "fix the JSON syntax (or name the file .yaml for YAML)");
  }
}

Result<ojson> load_shapes_file(const std::string& path) {
  auto text = io::read_text_file(path, size_t(64) << 20);
  if (!text) return std::move(text).error().with_path(path);
  const bool yaml = path.ends_with(".yaml") || path.ends_with(".yml");
  return parse_shapes_text(*text, yaml, path);
}

Result<Model> fake_weights(const Model& m, const FakeOptions& opt) {
  DType dflt = DType::F32;
  if (auto it = m.config.find("torch_dtype"); it != m.config.end() && it->is_string())
    if (auto d = dtype_from_name(it->get<std::string>()); d && dtype_info(*d).is_float) dflt = *d;
  if (opt.dtype) dflt = *opt.dtype;
  if (!dtype_info(dflt).is_float)
    return make_error(ErrorCode::InvalidArgument, "fake weights dtype {} is not a float type",
                      dtype_name(dflt));

  std::vector<Spec> specs;
  if (!opt.shapes.is_null()) {
    specs = MC_TRY(specs_from_shapes(opt.shapes, dflt));
  } else if (!m.tensors.empty()) {
    for (const auto& e : m.tensors) specs.push_back({e.name, e.shape, e.dtype});
  } else {
    const arch::ArchConfig c = MC_TRY(arch::from_hf_config(m.config));
    for (auto& p : MC_TRY(hf_param_specs(c))) specs.push_back({p.name, p.shape, dflt});
  }

  Model out = m;
  out.tensors = TensorStore();
  for (auto& s : specs) {
    const uint64_t numel = MC_TRY(shape_numel(s.shape));
    Fill fill = Fill::Zero;
    if (opt.mode == FakeMode::Random) {
      const bool norm = is_norm_param(s.name);
      const bool bias = s.name.ends_with(".bias");
      fill = norm ? (bias ? Fill::Zero : Fill::One) : Fill::Random;
    }
    const uint64_t key = splitmix64(opt.seed ^ fnv1a(s.name));
    TensorEntry e{s.name, s.dtype, s.shape, make_fake_data(s.dtype, numel, fill, key, opt.stddev)};
    out.tensors.put(std::move(e));
  }
  // The shapes decide what is tied: keep only pairs whose both names still exist.
  std::erase_if(out.tied, [&](const auto& p) {
    return !out.tensors.contains(p.first) || !out.tensors.contains(p.second);
  });
  return out;
}

}  // namespace mc::transforms
