// UTF-8 helpers shared by every stage: encoding a code point, checking well-formedness by the
// rules of RFC 3629 (no overlong forms, no surrogates, nothing above U+10FFFF), and replacing
// what is ill-formed. Pure and thread-safe.
#ifndef BREAKFIX_CORE_UTF8_H_
#define BREAKFIX_CORE_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace breakfix {

// Appends the UTF-8 form of `code_point` (at most U+10FFFF, not a surrogate) to *out.
void AppendUtf8(char32_t code_point, std::string* out);

// Length (1..4) of the well-formed UTF-8 sequence that starts at text[i], or 0 when the bytes
// there are ill-formed: a stray continuation byte, a truncated sequence, an overlong form, a
// surrogate, or a value above U+10FFFF. `i` must be < text.size().
size_t WellFormedUtf8Length(std::string_view text, size_t i);

// Offset of the first byte of the first ill-formed sequence in `text`, or npos when it is all
// well-formed.
size_t FindInvalidUtf8(std::string_view text);

// `text` with every byte that does not belong to a well-formed sequence replaced by U+FFFD.
std::string ReplaceInvalidUtf8(std::string_view text);

}  // namespace breakfix

#endif  // BREAKFIX_CORE_UTF8_H_
