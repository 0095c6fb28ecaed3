// ParseJudgeAnswer: the strict reader of judge answers. Anything but one well-formed object of the
// agreed shape is rejected with a message precise enough to quote back to the judge in a re-ask
// (and to a human reading an unscorable annotation).
#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "breakfix/judge.h"

namespace breakfix {
namespace {

using nlohmann::json;

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

// A short, printable excerpt of `s` for error messages.
std::string Excerpt(std::string_view s, size_t max = 40) {
  std::string out;
  for (char c : s.substr(0, max)) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

Status AnswerError(const std::string& message) { return Status::InvalidArgument(message); }

// Removes one ``` or ```json fence that wraps the whole (trimmed) answer.
Result<std::string_view> Unfence(std::string_view text) {
  if (text.substr(0, 3) != "```") return text;
  size_t eol = text.find('\n');
  if (eol == std::string_view::npos) {
    return AnswerError(
        "the answer opens a ``` code fence on line 1 but has nothing after it; expected one JSON "
        "object, optionally inside one ```json fence");
  }
  std::string label(Trim(text.substr(3, eol - 3)));
  std::transform(label.begin(), label.end(), label.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (!label.empty() && label != "json") {
    return AnswerError("the answer's code fence is labelled \"" + Excerpt(label) +
                       "\"; expected ```json or a bare ```");
  }
  std::string_view rest = text.substr(eol + 1);
  if (rest.size() < 3 || rest.substr(rest.size() - 3) != "```") {
    return AnswerError(
        "the answer opens a ```json code fence but does not end with a closing ``` line; nothing "
        "may follow the fence");
  }
  std::string_view body = rest.substr(0, rest.size() - 3);
  if (!body.empty() && body.back() != '\n') {
    return AnswerError("the closing ``` of the code fence must be on its own line");
  }
  if (body.find("```") != std::string_view::npos) {
    return AnswerError(
        "the answer contains more than one ``` code fence; expected a single JSON object, "
        "optionally inside one ```json fence");
  }
  return Trim(body);
}

// Tracks where the parser is, to report duplicate keys (which json would silently collapse).
class DuplicateKeyFinder {
 public:
  bool OnEvent(int /*depth*/, json::parse_event_t event, const json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (!frames_.empty() && frames_.back().is_array) ++frames_.back().index;
        frames_.push_back(Frame{event == json::parse_event_t::array_start, -1, "", {}});
        break;
      case json::parse_event_t::key: {
        Frame& top = frames_.back();
        std::string key = parsed.get<std::string>();
        if (!top.keys.insert(key).second && error_.empty()) {
          std::string where = Path();
          error_ = "duplicate key \"" + Excerpt(key) + "\" in " +
                   (where.empty() ? std::string("the top-level object") : where) +
                   "; each key may appear once";
        }
        top.key = std::move(key);
        break;
      }
      case json::parse_event_t::value:
        if (!frames_.empty() && frames_.back().is_array) ++frames_.back().index;
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!frames_.empty()) frames_.pop_back();
        break;
    }
    return true;
  }
  const std::string& error() const { return error_; }

 private:
  struct Frame {
    bool is_array;
    int index;        // arrays: index of the current element
    std::string key;  // objects: the current key
    std::set<std::string> keys;
  };
  // Path of the innermost open container, e.g. "turns[1]".
  std::string Path() const {
    std::string path;
    for (size_t i = 0; i + 1 < frames_.size(); ++i) {
      if (frames_[i].is_array) {
        path += "[" + std::to_string(frames_[i].index) + "]";
      } else {
        if (!path.empty()) path += ".";
        path += frames_[i].key;
      }
    }
    return path;
  }
  std::vector<Frame> frames_;
  std::string error_;
};

std::string Describe(const json& v) {
  if (v.is_string()) return "the string \"" + Excerpt(v.get<std::string>()) + "\"";
  if (v.is_number_float()) return v.dump();
  if (v.is_boolean()) return v.dump();
  if (v.is_null()) return "null";
  if (v.is_object()) return "an object";
  if (v.is_array()) return "a list";
  return v.dump();
}

// An integer value, or an error naming `field` and the expected range.
Result<int64_t> ReadInteger(const json& v, const std::string& field, int64_t lo, int64_t hi,
                            const std::string& range_note) {
  if (!v.is_number_integer()) {
    return AnswerError(field + ": expected a whole number from " + std::to_string(lo) + " to " +
                       std::to_string(hi) + range_note + ", got " + Describe(v));
  }
  int64_t n = 0;
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    n = u > static_cast<uint64_t>(hi) ? hi + 1 : static_cast<int64_t>(u);
  } else {
    n = v.get<int64_t>();
  }
  if (n < lo || n > hi) {
    return AnswerError(field + ": " + v.dump() + " is out of range; expected " +
                       std::to_string(lo) + " to " + std::to_string(hi) + range_note);
  }
  return n;
}

}  // namespace

Result<std::vector<TurnScore>> ParseJudgeAnswer(const std::string& text, Scale scale,
                                                int assistant_turns) {
  std::string_view body = Trim(text);
  if (body.empty()) {
    return AnswerError("the answer is empty; expected one JSON object {\"turns\":[...]}");
  }
  BF_ASSIGN_OR_RETURN(body, Unfence(body));
  if (body.empty() || body.front() != '{') {
    return AnswerError(
        "the answer must be exactly one JSON object starting with '{', but it "
        "starts with \"" +
        Excerpt(body, 30) + "\"; put no text before or after the object");
  }

  DuplicateKeyFinder dups;
  json root;
  try {
    root = json::parse(body, [&dups](int depth, json::parse_event_t event, json& parsed) {
      return dups.OnEvent(depth, event, parsed);
    });
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    // Drop the library's "[json.exception.parse_error.101] " tag; keep line/column and reason.
    if (size_t tag = what.find("] "); tag != std::string::npos && what[0] == '[') {
      what = what.substr(tag + 2);
    }
    std::string hint;
    if (what.find("expected end of input") != std::string::npos) {
      hint = "; nothing may follow the object (no second object, no prose)";
    } else if (e.byte >= 2 && e.byte <= body.size()) {
      // e.byte is the 1-based offset of the offending character.
      size_t before = e.byte - 1;
      while (before > 0 && IsBlank(body[before - 1])) --before;
      if (before > 0 && body[before - 1] == ',' &&
          (body[e.byte - 1] == ']' || body[e.byte - 1] == '}')) {
        hint = "; a trailing comma before a closing bracket is not allowed";
      }
    }
    return AnswerError("the answer is not valid JSON: " + what + hint);
  } catch (const json::exception& e) {
    return AnswerError(std::string("the answer is not valid JSON: ") + e.what());
  }
  if (!dups.error().empty()) return AnswerError(dups.error());

  for (const auto& [key, value] : root.items()) {
    if (key != "turns") {
      return AnswerError("unknown key \"" + Excerpt(key) +
                         "\" in the top-level object; the only key allowed is \"turns\"");
    }
  }
  auto turns_it = root.find("turns");
  if (turns_it == root.end()) {
    return AnswerError(
        "missing key \"turns\" in the top-level object; expected "
        "{\"turns\":[{\"turn\":1,\"score\":N,\"reason\":\"...\"}, ...]}");
  }
  const json& turns = *turns_it;
  if (!turns.is_array()) {
    return AnswerError("\"turns\" must be a list with one object per assistant turn, got " +
                       Describe(turns));
  }

  const int max_score = ScaleMax(scale);
  const std::string turn_note = " (the conversation has " + std::to_string(assistant_turns) +
                                " assistant turn" + (assistant_turns == 1 ? "" : "s") + ")";
  std::vector<TurnScore> out;
  std::vector<int> seen_at(static_cast<size_t>(std::max(assistant_turns, 0)) + 1, -1);
  for (size_t i = 0; i < turns.size(); ++i) {
    const json& entry = turns[i];
    const std::string where = "turns[" + std::to_string(i) + "]";
    if (!entry.is_object()) {
      return AnswerError(where +
                         ": expected an object {\"turn\":N,\"score\":N,\"reason\":\"...\"}, "
                         "got " +
                         Describe(entry));
    }
    for (const auto& [key, value] : entry.items()) {
      if (key != "turn" && key != "score" && key != "reason") {
        return AnswerError(where + ": unknown key \"" + Excerpt(key) +
                           "\"; the only keys allowed are \"turn\", \"score\" and \"reason\"");
      }
    }
    for (const char* key : {"turn", "score", "reason"}) {
      if (!entry.contains(key)) {
        return AnswerError(where + ": missing key \"" + key + "\"");
      }
    }
    if (assistant_turns < 1) {
      return AnswerError(where +
                         ": unexpected entry; the conversation has no assistant turns, so "
                         "\"turns\" must be empty");
    }
    TurnScore ts;
    BF_ASSIGN_OR_RETURN(int64_t turn,
                        ReadInteger(entry["turn"], where + ".turn", 1, assistant_turns, turn_note));
    BF_ASSIGN_OR_RETURN(int64_t score,
                        ReadInteger(entry["score"], where + ".score", 0, max_score,
                                    std::string(" on the ") + ScaleName(scale) + " scale"));
    const json& reason = entry["reason"];
    if (!reason.is_string()) {
      return AnswerError(where + ".reason: expected a one-sentence string, got " +
                         Describe(reason));
    }
    if (Trim(reason.get_ref<const std::string&>()).empty()) {
      return AnswerError(where + ".reason: is empty; expected one sentence explaining the score");
    }
    if (seen_at[turn] >= 0) {
      return AnswerError(where + ".turn: turn " + std::to_string(turn) +
                         " appears twice (also in turns[" + std::to_string(seen_at[turn]) +
                         "]); expected each assistant turn exactly once");
    }
    seen_at[turn] = static_cast<int>(i);
    ts.turn = static_cast<int>(turn);
    ts.score = static_cast<int>(score);
    ts.reason = reason.get<std::string>();
    out.push_back(std::move(ts));
  }
  if (static_cast<int>(out.size()) < assistant_turns) {
    std::string missing;
    for (int t = 1; t <= assistant_turns; ++t) {
      if (seen_at[t] < 0) missing += (missing.empty() ? "" : ", ") + std::to_string(t);
    }
    return AnswerError("\"turns\" has " + std::to_string(out.size()) + " entr" +
                       (out.size() == 1 ? "y" : "ies") + " but the conversation has " +
                       std::to_string(assistant_turns) + " assistant turns; missing turn " +
                       missing + "; expected one entry per assistant turn");
  }
  std::sort(out.begin(), out.end(),
            [](const TurnScore& a, const TurnScore& b) { return a.turn < b.turn; });
  return out;
}

}  // namespace breakfix
