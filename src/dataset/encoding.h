// Text encodings of imported files: UTF-8 checking, and a table-driven transcoder from the
// single-byte legacy encodings that spreadsheets and old tools still write (ISO-8859-1,
// Windows-1252, Mac OS Roman) to UTF-8.
//
// Everything inside breakfix is UTF-8, so a legacy file is transcoded once, as it is read, and
// the readers behind it (CsvReader, JsonlReader) never see anything else. Every function here is
// pure and thread-safe.
#ifndef BREAKFIX_DATASET_ENCODING_H_
#define BREAKFIX_DATASET_ENCODING_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "breakfix/status.h"
#include "core/utf8.h"  // AppendUtf8, FindInvalidUtf8

namespace breakfix::dataset {

enum class TextEncoding {
  kUtf8,    // UTF-8; a leading byte order mark is allowed (the readers skip it)
  kLatin1,  // ISO-8859-1: byte b is code point U+00b (0x80..0x9F are the C1 controls)
  kCp1252,  // Windows-1252: Latin-1 with printable characters (€, “”, –, …) in 0x80..0x9F
  kMacRoman,  // Mac OS Roman, as in Apple's published mapping (0xDB is €, 0xF0 the Apple logo)
};

// Parses a name, case-insensitively: utf-8 (utf8), latin1 (latin-1, iso-8859-1, iso8859-1),
// cp1252 (windows-1252), macroman (mac-roman, macintosh). The error lists the accepted names.
Result<TextEncoding> ParseTextEncoding(std::string_view name);
// The canonical name: "utf-8", "latin1", "cp1252" or "macroman".
const char* TextEncodingName(TextEncoding encoding);
// The canonical names, in the order above.
const std::vector<std::string>& TextEncodingNames();

// The Unicode code point of `byte` in a single-byte encoding. Bytes below 0x80 are ASCII in all
// three. The five bytes Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) map to the
// C1 controls of the same value, as the WHATWG Encoding Standard and Windows itself do, so every
// byte has a character and transcoding never fails. `encoding` must not be kUtf8.
char32_t SingleByteCodePoint(TextEncoding encoding, unsigned char byte);

// Appends `bytes`, read in `from`, to *out as UTF-8. Single-byte encodings carry no state from
// one byte to the next, so a file may be transcoded chunk by chunk as it is read. With kUtf8 the
// bytes are appended unchanged (check them with FindInvalidUtf8).
void AppendAsUtf8(std::string_view bytes, TextEncoding from, std::string* out);

// The bytes of the ill-formed sequence at `offset` for an error message: "byte 0xE9" or
// "bytes 0xE2 0x80" (a truncated sequence shows the bytes it has).
std::string DescribeInvalidUtf8(std::string_view text, size_t offset);

// The byte order mark `text` starts with, as a name ("UTF-8", "UTF-16LE", "UTF-16BE",
// "UTF-32LE", "UTF-32BE"), or "" when there is none. UTF-32LE is checked before UTF-16LE, whose
// mark is its prefix.
std::string ByteOrderMarkName(std::string_view text);

}  // namespace breakfix::dataset

#endif  // BREAKFIX_DATASET_ENCODING_H_
