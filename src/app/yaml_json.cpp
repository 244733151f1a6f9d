#include "app/yaml_json.h"

#include <yaml-cpp/yaml.h>

#include <regex>

#include "io/mapped_file.h"

namespace mc::app {

namespace {

ojson scalar(const YAML::Node& n) {
  const std::string s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted: a string, whatever it looks like
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  static const std::regex kInt("[-+]?[0-9]+");
  static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (std::regex_match(s, kInt)) {
    try {
      return int64_t(std::stoll(s));
    } catch (...) {
      return s;
    }
  }
  if (std::regex_match(s, kFloat)) {
    try {
      return std::stod(s);
    } catch (...) {
      return s;
    }
  }
  return s;
}

ojson convert(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar(n);
    case YAML::NodeType::Sequence: {
      ojson a = ojson::array();
      for (const auto& c : n) a.push_back(convert(c));
      return a;
    }
    case YAML::NodeType::Map: {
      ojson o = ojson::object();
      for (const auto& kv : n) o[kv.first.Scalar()] = convert(kv.second);
      return o;
    }
  }
  return nullptr;
}

void emit(YAML::Emitter& out, const ojson& v) {
  if (v.is_object()) {
    out << YAML::BeginMap;
    for (auto it = v.begin(); it != v.end(); ++it) {
      out << YAML::Key << it.key() << YAML::Value;
      emit(out, it.value());
    }
    out << YAML::EndMap;
  } else if (v.is_array()) {
    out << YAML::BeginSeq;
    for (const auto& e : v) emit(out, e);
    out << YAML::EndSeq;
  } else if (v.is_string()) {
    const std::string s = v.get<std::string>();
    // A string that would read back as another type is quoted.
    const ojson back = [&] {
      try {
        return scalar(YAML::Load(s));
      } catch (...) {
        return ojson();
      }
    }();
    if (back.is_string() && back.get<std::string>() == s) out << s;
    else out << YAML::DoubleQuoted << s;
  } else if (v.is_null()) {
    out << YAML::Null;
  } else {
    out << v.dump();
  }
}

}  // namespace

Result<ojson> parse_yaml(const std::string& text, const std::string& path) {
  try {
    return convert(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    return make_error(ErrorCode::Corrupt, "YAML error at line {}, column {}: {}", e.mark.line + 1, e.mark.column + 1, e.msg)
        .with_path(path);
  }
}

Result<ojson> read_yaml_or_json_file(const std::string& path) {
  const std::string text = MC_TRY(io::read_text_file(path, 64u << 20));
  const bool json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  if (!json) return parse_yaml(text, path);
  try {
    return ojson::parse(text);
  } catch (const ojson::parse_error& e) {
    return make_error(ErrorCode::Corrupt, "JSON error at byte {}: {}", e.byte, e.what()).with_path(path);
  }
}

std::string to_yaml(const ojson& v) {
  YAML::Emitter out;
  emit(out, v);
  return std::string(out.c_str()) + "\n";
}

}  // namespace mc::app
