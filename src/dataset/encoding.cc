#include "dataset/encoding.h"

#include <cassert>
#include <cstdint>
#include <cstdio>

namespace breakfix::dataset {
namespace {

// Windows-1252 bytes 0x80..0x9F. The undefined bytes (0x81, 0x8D, 0x8F, 0x90, 0x9D) keep their
// C1 control code points; 0xA0..0xFF are the same as Latin-1.
constexpr uint16_t kCp1252High[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,  // 0x80 € . ‚ ƒ „ … † ‡
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,  // 0x88 ˆ ‰ Š ‹ Œ . Ž .
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,  // 0x90 . ‘ ’ “ ” • – —
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,  // 0x98 ˜ ™ š › œ . ž Ÿ
};

// Mac OS Roman bytes 0x80..0xFF, following Apple's mapping table (ROMAN.TXT, the version in
// which 0xDB became the euro sign; 0xF0, the Apple logo, is in the private use area).
constexpr uint16_t kMacRomanHigh[128] = {
    0x00C4, 0x00C5, 0x00C7, 0x00C9, 0x00D1, 0x00D6, 0x00DC, 0x00E1,  // 0x80 Ä Å Ç É Ñ Ö Ü á
    0x00E0, 0x00E2, 0x00E4, 0x00E3, 0x00E5, 0x00E7, 0x00E9, 0x00E8,  // 0x88 à â ä ã å ç é è
    0x00EA, 0x00EB, 0x00ED, 0x00EC, 0x00EE, 0x00EF, 0x00F1, 0x00F3,  // 0x90 ê ë í ì î ï ñ ó
    0x00F2, 0x00F4, 0x00F6, 0x00F5, 0x00FA, 0x00F9, 0x00FB, 0x00FC,  // 0x98 ò ô ö õ ú ù û ü
    0x2020, 0x00B0, 0x00A2, 0x00A3, 0x00A7, 0x2022, 0x00B6, 0x00DF,  // 0xA0 † ° ¢ £ § • ¶ ß
    0x00AE, 0x00A9, 0x2122, 0x00B4, 0x00A8, 0x2260, 0x00C6, 0x00D8,  // 0xA8 ® © ™ ´ ¨ ≠ Æ Ø
    0x221E, 0x00B1, 0x2264, 0x2265, 0x00A5, 0x00B5, 0x2202, 0x2211,  // 0xB0 ∞ ± ≤ ≥ ¥ µ ∂ ∑
    0x220F, 0x03C0, 0x222B, 0x00AA, 0x00BA, 0x03A9, 0x00E6, 0x00F8,  // 0xB8 ∏ π ∫ ª º Ω æ ø
    0x00BF, 0x00A1, 0x00AC, 0x221A, 0x0192, 0x2248, 0x2206, 0x00AB,  // 0xC0 ¿ ¡ ¬ √ ƒ ≈ ∆ «
    0x00BB, 0x2026, 0x00A0, 0x00C0, 0x00C3, 0x00D5, 0x0152, 0x0153,  // 0xC8 » … nbsp À Ã Õ Œ œ
    0x2013, 0x2014, 0x201C, 0x201D, 0x2018, 0x2019, 0x00F7, 0x25CA,  // 0xD0 – — “ ” ‘ ’ ÷ ◊
    0x00FF, 0x0178, 0x2044, 0x20AC, 0x2039, 0x203A, 0xFB01, 0xFB02,  // 0xD8 ÿ Ÿ ⁄ € ‹ › ﬁ ﬂ
    0x2021, 0x00B7, 0x201A, 0x201E, 0x2030, 0x00C2, 0x00CA, 0x00C1,  // 0xE0 ‡ · ‚ „ ‰ Â Ê Á
    0x00CB, 0x00C8, 0x00CD, 0x00CE, 0x00CF, 0x00CC, 0x00D3, 0x00D4,  // 0xE8 Ë È Í Î Ï Ì Ó Ô
    0xF8FF, 0x00D2, 0x00DA, 0x00DB, 0x00D9, 0x0131, 0x02C6, 0x02DC,  // 0xF0 logo Ò Ú Û Ù ı ˆ ˜
    0x00AF, 0x02D8, 0x02D9, 0x02DA, 0x00B8, 0x02DD, 0x02DB, 0x02C7,  // 0xF8 ¯ ˘ ˙ ˚ ¸ ˝ ˛ ˇ
};

struct EncodingName {
  const char* name;
  TextEncoding encoding;
};

// Accepted spellings; the first of each encoding is its canonical name.
constexpr EncodingName kNames[] = {
    {"utf-8", TextEncoding::kUtf8},         {"utf8", TextEncoding::kUtf8},
    {"latin1", TextEncoding::kLatin1},      {"latin-1", TextEncoding::kLatin1},
    {"iso-8859-1", TextEncoding::kLatin1},  {"iso8859-1", TextEncoding::kLatin1},
    {"cp1252", TextEncoding::kCp1252},      {"windows-1252", TextEncoding::kCp1252},
    {"macroman", TextEncoding::kMacRoman},  {"mac-roman", TextEncoding::kMacRoman},
    {"macintosh", TextEncoding::kMacRoman},
};

char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

Result<TextEncoding> ParseTextEncoding(std::string_view name) {
  std::string lower;
  for (char c : name) lower += LowerAscii(c);
  for (const EncodingName& n : kNames) {
    if (lower == n.name) return n.encoding;
  }
  std::string accepted;
  for (const EncodingName& n : kNames)
    accepted += (accepted.empty() ? "" : ", ") + std::string(n.name);
  return Status::InvalidArgument("unknown encoding '" + std::string(name) +
                                 "'; expected one of: " + accepted);
}

const char* TextEncodingName(TextEncoding encoding) {
  switch (encoding) {
    case TextEncoding::kUtf8:
      return "utf-8";
    case TextEncoding::kLatin1:
      return "latin1";
    case TextEncoding::kCp1252:
      return "cp1252";
    case TextEncoding::kMacRoman:
      return "macroman";
  }
  return "utf-8";
}

const std::vector<std::string>& TextEncodingNames() {
  static const std::vector<std::string> names = {"utf-8", "latin1", "cp1252", "macroman"};
  return names;
}

char32_t SingleByteCodePoint(TextEncoding encoding, unsigned char byte) {
  assert(encoding != TextEncoding::kUtf8);
  if (byte < 0x80) return byte;
  switch (encoding) {
    case TextEncoding::kCp1252:
      return byte < 0xA0 ? kCp1252High[byte - 0x80] : byte;
    case TextEncoding::kMacRoman:
      return kMacRomanHigh[byte - 0x80];
    case TextEncoding::kLatin1:
    case TextEncoding::kUtf8:
      break;
  }
  return byte;
}

void AppendAsUtf8(std::string_view bytes, TextEncoding from, std::string* out) {
  if (from == TextEncoding::kUtf8) {
    out->append(bytes);
    return;
  }
  out->reserve(out->size() + bytes.size() + bytes.size() / 8);
  size_t run = 0;  // start of the current run of ASCII bytes, copied in one piece
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    if (b < 0x80) continue;
    out->append(bytes.substr(run, i - run));
    AppendUtf8(SingleByteCodePoint(from, b), out);
    run = i + 1;
  }
  out->append(bytes.substr(run));
}

std::string DescribeInvalidUtf8(std::string_view text, size_t offset) {
  if (offset >= text.size()) return "the end of the text";
  // Show the lead byte and the continuation bytes that follow it (at most three), which is
  // what a reader needs to recognise a legacy character or a cut sequence.
  size_t end = offset + 1;
  while (end < text.size() && end < offset + 4 &&
         (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
    ++end;
  }
  std::string out = end - offset == 1 ? "byte" : "bytes";
  char hex[8];
  for (size_t k = offset; k < end; ++k) {
    std::snprintf(hex, sizeof(hex), " 0x%02X", static_cast<unsigned char>(text[k]));
    out += hex;
  }
  return out;
}

std::string ByteOrderMarkName(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") return "UTF-8";
  if (text.substr(0, 4) == std::string_view("\xFF\xFE\x00\x00", 4)) return "UTF-32LE";
  if (text.substr(0, 4) == std::string_view("\x00\x00\xFE\xFF", 4)) return "UTF-32BE";
  if (text.substr(0, 2) == "\xFF\xFE") return "UTF-16LE";
  if (text.substr(0, 2) == "\xFE\xFF") return "UTF-16BE";
  return "";
}

}  // namespace breakfix::dataset
