// Small text helpers shared by stages.
#ifndef BREAKFIX_CORE_TEXT_H_
#define BREAKFIX_CORE_TEXT_H_

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace breakfix {

// `s` without leading and trailing whitespace (as std::isspace sees it).
inline std::string TrimSpace(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// `items` joined with `separator` between them.
inline std::string JoinText(const std::vector<std::string>& items,
                            std::string_view separator = ", ") {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

}  // namespace breakfix

#endif  // BREAKFIX_CORE_TEXT_H_
