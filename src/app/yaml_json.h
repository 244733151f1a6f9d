// YAML (job files, the config file) as JSON values: one tree type for every file the tool reads,
// whichever syntax it was written in.
#pragma once

#include <string>

#include "core/model.h"

namespace mc::app {

// Parses YAML (JSON is valid YAML) into JSON values: plain scalars become null, booleans,
// integers, floats or strings by their YAML 1.2 core-schema form; quoted scalars stay strings.
// Errors are Corrupt with the line and column.
Result<ojson> parse_yaml(const std::string& text, const std::string& path);
// Parses by the file name: .json with the JSON parser, anything else as YAML.
Result<ojson> read_yaml_or_json_file(const std::string& path);
// Writes a JSON value as block-style YAML.
std::string to_yaml(const ojson& v);

}  // namespace mc::app
