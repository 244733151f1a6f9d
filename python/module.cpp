// The Python module (import modelconvert): pybind11 over the installed C++ interface
// (api/library.h) for convert/inspect/validate/check, and over the converter's reader for
// open(): any readable format as HF names, each tensor a numpy array (a read-only view of the
// mapped file where the bytes lie there in a numpy dtype, else read and, for bf16/f8, widened to
// float32; quantized formats are dequantized by their readers). Failures raise
// modelconvert.Error with .exit_code, .code and .message. The GIL is released while a call reads,
// converts or runs a model.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>

#include "api/library.h"
#include "converter/converter.h"

namespace py = pybind11;

namespace {

[[noreturn]] void raise(const mc::Error& e) {
  throw mc::api::Failure(mc::exit_code_for(e.code), std::string(mc::error_code_name(e.code)), e.render());
}

py::object from_json(const std::string& text) { return py::module_::import("json").attr("loads")(text); }

// Keyword arguments as the command line's option values: True/False as "true"/"false", lists as
// "a,b", None dropped.
std::map<std::string, std::string> option_map(const py::kwargs& kw) {
  std::map<std::string, std::string> m;
  for (const auto& [k, v] : kw) {
    if (v.is_none()) continue;
    std::string s;
    if (py::isinstance<py::bool_>(v)) s = v.cast<bool>() ? "true" : "false";
    else if (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)) {
      for (const auto& x : v) s += (s.empty() ? "" : ",") + py::str(x).cast<std::string>();
    } else if (py::isinstance<py::dict>(v)) s = py::module_::import("json").attr("dumps")(v).cast<std::string>();
    else s = py::str(v).cast<std::string>();
    m[k.cast<std::string>()] = s;
  }
  return m;
}

std::optional<std::string> numpy_dtype(mc::DType t) {
  switch (t) {
    case mc::DType::F64: return "float64";
    case mc::DType::F32: return "float32";
    case mc::DType::F16: return "float16";
    case mc::DType::I64: return "int64";
    case mc::DType::I32: return "int32";
    case mc::DType::I16: return "int16";
    case mc::DType::I8: return "int8";
    case mc::DType::U64: return "uint64";
    case mc::DType::U32: return "uint32";
    case mc::DType::U16: return "uint16";
    case mc::DType::U8: return "uint8";
    case mc::DType::Bool: return "bool";
    default: return std::nullopt;  // bf16, f8: widened to float32
  }
}

struct OpenModel {
  std::shared_ptr<const mc::Model> model;

  py::object config() const { return from_json(model->config.dump(-1, ' ', false, mc::ojson::error_handler_t::replace)); }
  std::string format() const { return model->source_format; }
  std::vector<std::string> tensors() const {
    std::vector<std::string> names;
    for (const auto& e : model->tensors) names.push_back(e.name);
    return names;
  }
  const mc::TensorEntry& entry(const std::string& name) const {
    const auto* e = model->tensors.find(name);
    if (!e) {
      throw mc::api::Failure(mc::exit_code_for(mc::ErrorCode::NotFound), "not_found",
                             "no tensor '" + name + "' in " + model->source_path);
    }
    return *e;
  }
  std::vector<int64_t> shape(const std::string& name) const {
    const auto& s = entry(name).shape;
    return {s.begin(), s.end()};
  }
  std::string dtype(const std::string& name) const { return std::string(mc::dtype_name(entry(name).dtype)); }

  py::array tensor(const std::string& name) const {
    const auto& e = entry(name);
    std::vector<py::ssize_t> shape(e.shape.begin(), e.shape.end());
    if (mc::is_quantized(e.dtype)) {
      throw mc::api::Failure(mc::exit_code_for(mc::ErrorCode::Unsupported), "unsupported",
                             "tensor '" + name + "' is stored as " + std::string(mc::dtype_name(e.dtype)) +
                                 ", which this reader does not dequantize");
    }
    const auto np = numpy_dtype(e.dtype);
    if (np) {
      if (auto v = e.data->view(); v && v->size() == e.nbytes()) {
        // Zero-copy: the array keeps the model (and so its mapping) alive.
        auto* keep = new std::shared_ptr<const mc::Model>(model);
        py::capsule owner(keep, [](void* p) { delete static_cast<std::shared_ptr<const mc::Model>*>(p); });
        py::array a(py::dtype(*np), shape, {}, v->data(), owner);
        a.attr("flags").attr("writeable") = false;
        return a;
      }
      py::array a(py::dtype(*np), shape);
      std::span<std::byte> dst(static_cast<std::byte*>(a.mutable_data()), e.nbytes());
      mc::Status st;
      {
        py::gil_scoped_release nogil;
        st = e.data->read(0, dst);
      }
      if (!st) raise(st.error());
      return a;
    }
    py::array_t<float> a(shape);
    std::span<std::byte> dst(reinterpret_cast<std::byte*>(a.mutable_data()), size_t(e.numel()) * sizeof(float));
    mc::Status st;
    {
      py::gil_scoped_release nogil;
      std::vector<std::byte> raw(e.nbytes());
      st = e.data->read(0, raw);
      if (st) st = mc::convert(e.dtype, raw, mc::DType::F32, dst);
    }
    if (!st) raise(st.error());
    return a;
  }
};

OpenModel open_model(const std::string& path, const std::string& input_format, const py::kwargs& kw) {
  mc::formats::ReadOptions ro;
  for (const auto& [k, v] : option_map(kw)) {
    if (k == "model_type") ro.model_type = v;
    else if (k == "tokenizer") ro.tokenizer = v;
    else if (k == "vocab_size") ro.vocab_size = std::stoll(v);
    else throw mc::api::Failure(2, "invalid_argument", "open() has no option '" + k + "'");
  }
  mc::Result<mc::Model> m = mc::make_error(mc::ErrorCode::Internal, "not read");
  {
    py::gil_scoped_release nogil;
    m = mc::converter::read_input(path, input_format, ro);
  }
  if (!m) raise(m.error());
  return OpenModel{std::make_shared<const mc::Model>(std::move(*m))};
}

}  // namespace

PYBIND11_MODULE(_modelconvert, m) {
  m.doc() = "modelconvert: convert, inspect, validate and run LLM checkpoints";
  static py::exception<mc::api::Failure> error(m, "Error");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const mc::api::Failure& f) {
      py::object inst = py::handle(error.ptr())(f.what());  // an instance (error() would raise)
      inst.attr("exit_code") = f.exit_code();
      inst.attr("code") = f.code();
      inst.attr("message") = std::string(f.what());
      PyErr_SetObject(error.ptr(), inst.ptr());
    }
  });

  py::class_<OpenModel>(m, "Model")
      .def_property_readonly("config", &OpenModel::config)
      .def_property_readonly("format", &OpenModel::format)
      .def("tensors", &OpenModel::tensors)
      .def("tensor", &OpenModel::tensor, py::arg("name"))
      .def("shape", &OpenModel::shape, py::arg("name"))
      .def("dtype", &OpenModel::dtype, py::arg("name"))
      .def("__len__", [](const OpenModel& o) { return o.model->tensors.size(); })
      .def("__contains__", [](const OpenModel& o, const std::string& n) { return o.model->tensors.contains(n); })
      .def("__repr__", [](const OpenModel& o) {
        return "<modelconvert.Model " + o.model->source_format + " " + o.model->source_path + ", " +
               std::to_string(o.model->tensors.size()) + " tensors>";
      });

  m.def("open", &open_model, py::arg("path"), py::arg("input_format") = "auto");
  m.def(
      "convert",
      [](const std::string& input, const std::string& output_format, const std::optional<std::string>& output,
         const std::optional<std::string>& quant, const std::optional<std::string>& dtype, const py::kwargs& kw) {
        mc::api::ConvertOptions o;
        o.input = input;
        o.output_format = output_format;
        o.output = output.value_or("");
        o.quant = quant.value_or("");
        o.dtype = dtype.value_or("");
        o.options = option_map(kw);
        mc::api::ConvertResult r;
        {
          py::gil_scoped_release nogil;
          r = mc::api::convert(o);
        }
        return from_json(r.json);
      },
      py::arg("input"), py::arg("output_format"), py::arg("output") = py::none(), py::arg("quant") = py::none(),
      py::arg("dtype") = py::none());
  m.def(
      "inspect",
      [](const std::string& path, const std::string& input_format) {
        std::string j;
        {
          py::gil_scoped_release nogil;
          j = mc::api::inspect_json(path, input_format);
        }
        return from_json(j);
      },
      py::arg("path"), py::arg("input_format") = "auto");
  m.def(
      "validate",
      [](const std::string& path, const std::string& input_format) {
        std::string j;
        {
          py::gil_scoped_release nogil;
          j = mc::api::validate_json(path, input_format);
        }
        return from_json(j);
      },
      py::arg("path"), py::arg("input_format") = "auto");
  m.def(
      "check",
      [](const std::string& model, const py::kwargs& kw) {
        const auto opts = option_map(kw);
        std::string j;
        {
          py::gil_scoped_release nogil;
          j = mc::api::check_json(model, opts);
        }
        return from_json(j);
      },
      py::arg("model"));
  m.attr("__version__") = mc::api::library_version();
}
