#include "dataset/jsonl_reader.h"

#include <nlohmann/json.hpp>

#include "dataset/location.h"

namespace breakfix::dataset {
namespace {

using nlohmann::json;

const char* TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::array:
      return "a JSON array";
    case json::value_t::string:
      return "a JSON string";
    case json::value_t::boolean:
      return "a JSON boolean";
    case json::value_t::null:
      return "JSON null";
    case json::value_t::object:
      return "a JSON object";
    default:
      return "a JSON number";
  }
}

const json* Lookup(const json& object, const std::string& key) {
  auto it = object.find(key);
  if (it != object.end()) return &*it;
  if (key.find('.') == std::string::npos) return nullptr;
  const json* node = &object;
  size_t start = 0;
  while (start <= key.size()) {
    size_t dot = key.find('.', start);
    if (dot == std::string::npos) dot = key.size();
    std::string part = key.substr(start, dot - start);
    if (node->is_object()) {
      auto child = node->find(part);
      if (child == node->end()) return nullptr;
      node = &*child;
    } else if (node->is_array()) {
      if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos ||
          part.size() > 9) {
        return nullptr;
      }
      size_t index = std::stoul(part);
      if (index >= node->size()) return nullptr;
      node = &(*node)[index];
    } else {
      return nullptr;
    }
    start = dot + 1;
  }
  return node;
}

std::string ValueText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return std::string();
  // Values parsed from text are valid UTF-8, so dump() cannot throw on them; replace anyway to be
  // safe against surprises.
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

// nlohmann's what(): "[json.exception.parse_error.101] parse error at line 1, column 5: <detail>".
// Keeps <detail>, since we print our own position.
std::string ParseErrorDetail(const std::string& what) {
  size_t at = what.find("parse error");
  if (at == std::string::npos) return what;
  size_t colon = what.find(": ", at);
  if (colon == std::string::npos) return what;
  return what.substr(colon + 2);
}

}  // namespace

JsonlReader::JsonlReader(ByteStream* in) : in_(in) {}

Result<bool> JsonlReader::Next(const std::vector<std::string>& keys,
                               std::vector<std::optional<std::string>>* values) {
  while (true) {
    if (!in_->ReadLine(&text_, kMaxLineBytes)) {
      const Status& s = in_->status();
      if (s.code() == StatusCode::kInvalidArgument) {  // the line-length limit
        return ErrorAt({in_->name(), line_ + 1, 1},
                       "a line longer than " + std::to_string(kMaxLineBytes) + " bytes",
                       "one JSON object per line");
      }
      BF_RETURN_IF_ERROR(s);
      return false;
    }
    ++line_;
    if (line_ == 1 && text_.compare(0, 3, "\xEF\xBB\xBF") == 0) text_.erase(0, 3);
    if (!text_.empty() && text_.back() == '\r') text_.pop_back();
    size_t first = text_.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;  // blank line
    const int64_t first_column = CountCodePoints(text_, 0, first) + 1;

    json object;
    try {
      object = json::parse(text_);
    } catch (const json::parse_error& e) {
      // e.byte is the 1-based index of the byte at which parsing failed.
      size_t byte = e.byte == 0 ? 0 : e.byte - 1;
      int64_t column = CountCodePoints(text_, 0, std::min(byte, text_.size())) + 1;
      return ErrorAt({in_->name(), line_, column}, "invalid JSON: " + ParseErrorDetail(e.what()),
                     "one complete JSON object per line");
    } catch (const json::exception& e) {
      return ErrorAt({in_->name(), line_, first_column}, std::string("invalid JSON: ") + e.what(),
                     "one complete JSON object per line");
    }
    if (!object.is_object()) {
      return ErrorAt({in_->name(), line_, first_column}, TypeName(object),
                     "a JSON object ({...}) on each line");
    }
    values->assign(keys.size(), std::nullopt);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (const json* v = Lookup(object, keys[i])) (*values)[i] = ValueText(*v);
    }
    return true;
  }
}

}  // namespace breakfix::dataset
