#include "dataset/template_text.h"

#include <algorithm>

namespace breakfix::dataset {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// A short, printable excerpt of `text` starting at `pos`, for error messages.
std::string Excerpt(const std::string& text, size_t pos) {
  std::string out = text.substr(pos, 24);
  std::replace(out.begin(), out.end(), '\n', ' ');
  if (pos + 24 < text.size()) out += "...";
  return out;
}

}  // namespace

Result<TemplateText> TemplateText::Parse(const std::string& text, const Location& where) {
  TemplateText t;
  t.where_ = where;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string::npos) {
      t.segments_.push_back({false, text.substr(pos)});
      break;
    }
    if (open > pos) t.segments_.push_back({false, text.substr(pos, open - pos)});
    size_t i = open + 2;
    while (i < text.size() && text[i] == ' ') ++i;
    size_t name_begin = i;
    while (i < text.size() && IsNameChar(text[i])) ++i;
    size_t name_end = i;
    while (i < text.size() && text[i] == ' ') ++i;
    if (name_end == name_begin || text.compare(i, 2, "}}") != 0) {
      return ErrorAt(where, "malformed placeholder \"" + Excerpt(text, open) + "\"",
                     "{{name}} where name is letters, digits and '_' (there is no escape for a "
                     "literal \"{{\")");
    }
    std::string name = text.substr(name_begin, name_end - name_begin);
    if (std::find(t.placeholders_.begin(), t.placeholders_.end(), name) == t.placeholders_.end()) {
      t.placeholders_.push_back(name);
    }
    t.segments_.push_back({true, std::move(name)});
    pos = i + 2;
  }
  return t;
}

std::string TemplateText::Render(const std::map<std::string, std::string>& bindings) const {
  std::string out;
  for (const Segment& s : segments_) {
    if (!s.is_placeholder) {
      out += s.text;
    } else if (auto it = bindings.find(s.text); it != bindings.end()) {
      out += it->second;
    }
  }
  return out;
}

}  // namespace breakfix::dataset
