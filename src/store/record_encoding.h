// How store records map onto column values: enum names and the two JSON columns.
//
// Enums are stored as stable lowercase names (never as their C++ ordinal, which would silently
// change meaning if an enumerator were inserted): ScaleName/OutcomeName (judge.h) and
// RunStatusName/ConversationStatusName (store.h) write them; the Parse* functions here read them
// back. record_encoding_test pins every stored name.
//
// JSON columns must hold arbitrary bytes exactly: a string that is valid UTF-8 is stored as a
// JSON string; any other string as {"hex": "<lowercase hex of the bytes>"}. Decoding accepts
// both forms and reproduces the original bytes.
#ifndef BREAKFIX_STORE_RECORD_ENCODING_H_
#define BREAKFIX_STORE_RECORD_ENCODING_H_

#include <string>
#include <string_view>
#include <vector>

#include "breakfix/judge.h"
#include "breakfix/status.h"
#include "breakfix/store.h"
#include "breakfix/suite.h"

namespace breakfix {
namespace store {

// Stored names. Each Parse* returns kCorruption naming the field and the accepted values.
Result<Scale> ParseScaleText(std::string_view text);
Result<Outcome> ParseOutcomeText(std::string_view text);
Result<RunStatus> ParseRunStatus(std::string_view text);
Result<ConversationStatus> ParseConversationStatus(std::string_view text);

// True when `bytes` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view bytes);

// Per-turn scores as JSON: [{"turn":1,"score":3,"reason":...}, ...]. Never throws.
std::string EncodeTurnScores(const std::vector<TurnScore>& turns);
// `where` names the row for error messages (e.g. "annotation abc123").
Result<std::vector<TurnScore>> DecodeTurnScores(std::string_view json, std::string_view where);

// A rendered seed item as a JSON object (every field, bytes exact). Never throws.
std::string EncodeItem(const SeedItem& item);
Result<SeedItem> DecodeItem(std::string_view json, std::string_view where);

// A list of strings as a JSON array. Never throws.
std::string EncodeStringList(const std::vector<std::string>& items);
Result<std::vector<std::string>> DecodeStringList(std::string_view json, std::string_view where);

// Chat messages as a JSON array [{"role":"user","content":...}, ...], contents bytes exact.
std::string EncodeMessages(const std::vector<Message>& messages);
Result<std::vector<Message>> DecodeMessages(std::string_view json, std::string_view where);

}  // namespace store
}  // namespace breakfix

#endif  // BREAKFIX_STORE_RECORD_ENCODING_H_
