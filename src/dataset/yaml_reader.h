// YamlReader: reading configuration files (cycles, campaigns) strictly. Every key is checked,
// so a typo never silently falls back to a default, and every error names file:line:column.
#ifndef BREAKFIX_DATASET_YAML_READER_H_
#define BREAKFIX_DATASET_YAML_READER_H_

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "breakfix/status.h"

namespace breakfix::dataset {

class YamlReader {
 public:
  explicit YamlReader(std::string file) : file_(std::move(file)) {}

  // Parses the whole file, which must be a mapping at the top. Syntax errors name file:line:col.
  Result<YAML::Node> LoadMap(const std::string& yaml_text) const {
    YAML::Node root;
    try {
      root = YAML::Load(yaml_text);
    } catch (const YAML::ParserException& e) {
      return Status::InvalidArgument(file_ + ":" + std::to_string(e.mark.line + 1) + ":" +
                                     std::to_string(e.mark.column + 1) + ": " + e.msg);
    }
    if (!root.IsMap()) return Status::InvalidArgument(file_ + ": expected a mapping at the top");
    return root;
  }

  Status At(const YAML::Node& node, const std::string& what) const {
    const YAML::Mark m = node.Mark();
    std::string where = file_;
    if (m.line >= 0) where += ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
    return Status::InvalidArgument(where + ": " + what);
  }

  Status Keys(const YAML::Node& map, const std::string& section,
              const std::set<std::string>& known) const {
    if (!map.IsMap()) return At(map, section + " must be a mapping");
    for (const auto& kv : map) {
      const std::string key = kv.first.as<std::string>();
      if (!known.count(key)) {
        std::string list;
        for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
        return At(kv.first,
                  "unknown key \"" + key + "\" in " + section + "; expected one of: " + list);
      }
    }
    return Status::OK();
  }

  template <typename T>
  Status Get(const YAML::Node& map, const char* key, T* out, const char* expected) const {
    const YAML::Node n = map[key];
    if (!n) return Status::OK();
    try {
      *out = n.as<T>();
    } catch (const YAML::Exception&) {
      return At(n, std::string(key) + ": expected " + expected);
    }
    return Status::OK();
  }

  Status Strings(const YAML::Node& map, const char* key, std::vector<std::string>* out) const {
    const YAML::Node n = map[key];
    if (!n) return Status::OK();
    if (!n.IsSequence()) return At(n, std::string(key) + ": expected a list of strings");
    out->clear();
    for (const YAML::Node& v : n) {
      if (!v.IsScalar()) return At(v, std::string(key) + ": expected a list of strings");
      out->push_back(v.as<std::string>());
    }
    return Status::OK();
  }

  Status Positive(const YAML::Node& map, const char* key, double value, bool allow_zero) const {
    if (value > 0 || (allow_zero && value == 0)) return Status::OK();
    return At(map[key], std::string(key) + " must be " + (allow_zero ? ">= 0" : "> 0"));
  }

 private:
  std::string file_;
};

// `path` relative to a configuration file's folder `base`; absolute and empty paths unchanged.
inline std::string ResolvePath(const std::string& base, const std::string& path) {
  if (path.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (std::filesystem::path(base) / path).lexically_normal().string();
}

// A suite named in a configuration file: a file (a path with a slash, or ending in .yaml)
// resolves like any path; a built-in suite name is returned unchanged.
inline std::string ResolveSuitePath(const std::string& base, const std::string& name_or_path) {
  if (name_or_path.find('/') == std::string::npos && !name_or_path.ends_with(".yaml")) {
    return name_or_path;
  }
  return ResolvePath(base, name_or_path);
}

// A model or judge spec from a configuration file: "local:PATH" and "classifier:PATH" keep their
// prefix and resolve the path after it; other specs are returned unchanged.
inline std::string ResolveSpecPath(const std::string& base, const std::string& spec) {
  for (const std::string prefix : {"local:", "classifier:"}) {
    if (spec.rfind(prefix, 0) == 0) return prefix + ResolvePath(base, spec.substr(prefix.size()));
  }
  return spec;
}

}  // namespace breakfix::dataset

#endif  // BREAKFIX_DATASET_YAML_READER_H_
