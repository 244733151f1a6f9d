// Fake weights: a model with the right tensor names/shapes/dtypes whose values are generated on
// demand (zeros, or a seeded normal stream), for testing pipelines without real checkpoints.
// The PRNG is counter-based, so any chunk of any tensor can be produced independently and the
// values do not depend on how a writer splits its reads.
#include <cmath>
#include <cstring>
#include <numbers>
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

// Element i of the N(0,1) stream `key`: Box-Muller on the pair (2p, 2p+1), p = i / 2; even i
// takes the cosine branch, odd i the sine branch.
double normal_at(uint64_t key, uint64_t i) {
  const uint64_t p = i / 2;
  const double u1 = double((splitmix64(key + 2 * p) >> 11) + 1) * 0x1p-53;  // (0, 1]
  const double u2 = double(splitmix64(key + 2 * p + 1) >> 11) * 0x1p-53;    // [0, 1)
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double a = 2.0 * std::numbers::pi * u2;
  return (i % 2 == 0) ? r * std::cos(a) : r * std::sin(a);
}

enum class Fill { Zero, One, Normal };

TensorDataPtr make_fake_data(DType dtype, uint64_t numel, Fill fill, uint64_t key, float stddev) {
  if (is_quantized(dtype) || !dtype_info(dtype).is_float) fill = Fill::Zero;  // all-zero bytes
  const size_t esz = is_quantized(dtype) ? 1 : dtype_size(dtype);
  const uint64_t n_units = is_quantized(dtype) ? numel / dtype_info(dtype).block_elems *
                                                     dtype_info(dtype).block_bytes
                                               : numel;
  return make_fn_data(
      [=](uint64_t offset, std::span<std::byte> dst) -> Status {
        return read_elementwise(offset, dst, esz, n_units,
                                [&](uint64_t first, uint64_t count, std::byte* out) -> Status {
                                  if (fill == Fill::Zero) {
                                    std::memset(out, 0, count * esz);
                                    return {};
                                  }
                                  std::vector<float> v(count, 1.0f);
                                  if (fill == Fill::Normal)
                                    for (uint64_t i = 0; i < count; ++i)
                                      v[i] = float(normal_at(key, first + i)) * stddev;
                                  from_f32(v.data(), dtype, out, count);
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
      fill = norm ? (bias ? Fill::Zero : Fill::One) : Fill::Normal;
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
