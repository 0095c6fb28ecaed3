// Anthropic HH-RLHF import. Each row holds two whole transcripts that share every turn but the
// last; the shared turns are the prompt and the two final assistant turns the preference. The
// public files have a few rows that break this shape (a transcript whose text contains a stray
// "Human:" turn, an empty final reply); they are reported by line rather than guessed at.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "breakfix/curate.h"
#include "curate/json_text.h"
#include "curate/line_reader.h"

namespace breakfix {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr std::string_view kHuman = "\n\nHuman:";
constexpr std::string_view kAssistant = "\n\nAssistant:";

std::string Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// The next speaker marker at or after `from`: its position and role; npos when none.
size_t NextMarker(std::string_view s, size_t from, Role* role) {
  const size_t h = s.find(kHuman, from);
  const size_t a = s.find(kAssistant, from);
  if (h == std::string_view::npos && a == std::string_view::npos) return std::string_view::npos;
  if (a == std::string_view::npos || (h != std::string_view::npos && h < a)) {
    *role = Role::kUser;
    return h;
  }
  *role = Role::kAssistant;
  return a;
}

const char* Speaker(Role role) { return role == Role::kUser ? "Human" : "Assistant"; }

// Checks one row and turns it into a pair; the error text is the issue reported for the line.
Result<PreferencePair> PairFromRow(const ordered_json& row) {
  if (!row.is_object()) {
    return Status::InvalidArgument("expected a JSON object, found " + curate::JsonTypeName(row));
  }
  std::vector<Message> turns[2];
  const char* fields[2] = {"chosen", "rejected"};
  for (int i = 0; i < 2; ++i) {
    auto it = row.find(fields[i]);
    if (it == row.end())
      return Status::InvalidArgument(std::string("missing field \"") + fields[i] + "\"");
    if (!it->is_string()) {
      return Status::InvalidArgument(std::string("field \"") + fields[i] +
                                     "\": expected a transcript string, found " +
                                     curate::JsonTypeName(*it));
    }
    Result<std::vector<Message>> parsed = ParseHhTranscript(it->get<std::string>());
    if (!parsed.ok()) {
      return Status::InvalidArgument(std::string("field \"") + fields[i] +
                                     "\": " + parsed.status().message());
    }
    turns[i] = std::move(parsed).value();
    if (turns[i].back().role != Role::kAssistant) {
      return Status::InvalidArgument(std::string("field \"") + fields[i] +
                                     "\": the transcript ends with a Human turn; expected a final "
                                     "Assistant turn");
    }
    if (turns[i].back().content.empty()) {
      return Status::InvalidArgument(std::string("field \"") + fields[i] +
                                     "\": the final Assistant turn is empty");
    }
  }
  const std::vector<Message>& chosen = turns[0];
  const std::vector<Message>& rejected = turns[1];
  if (chosen.size() != rejected.size()) {
    return Status::InvalidArgument("chosen has " + std::to_string(chosen.size()) +
                                   " turns and rejected " + std::to_string(rejected.size()) +
                                   "; expected the same turns with a different final reply");
  }
  for (size_t i = 0; i + 1 < chosen.size(); ++i) {
    if (!(chosen[i] == rejected[i])) {
      return Status::InvalidArgument("chosen and rejected differ at turn " + std::to_string(i + 1) +
                                     " (" + Speaker(chosen[i].role) +
                                     "); expected them to differ only in the final reply");
    }
  }
  if (chosen.back().content == rejected.back().content) {
    return Status::InvalidArgument("chosen and rejected final replies are identical");
  }
  PreferencePair pair;
  pair.kind = kPairKindImported;
  pair.prompt.assign(chosen.begin(), chosen.end() - 1);
  pair.chosen = chosen.back().content;
  pair.rejected = rejected.back().content;
  return pair;
}

}  // namespace

Result<std::vector<Message>> ParseHhTranscript(const std::string& text) {
  // Rows open with "\n\nHuman:"; tolerate other leading blank space before the first "Human:".
  std::string_view s = text;
  const size_t first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return Status::InvalidArgument("the transcript is empty");
  if (s.substr(first, 6) != "Human:") {
    return Status::InvalidArgument("the transcript does not start with \"Human:\"");
  }
  std::string normalised = std::string(kHuman) + std::string(s.substr(first + 6));
  s = normalised;
  std::vector<Message> turns;
  Role role = Role::kUser;
  size_t pos = NextMarker(s, 0, &role);
  while (pos != std::string_view::npos) {
    const size_t body = pos + (role == Role::kUser ? kHuman.size() : kAssistant.size());
    Role next_role = Role::kUser;
    const size_t next = NextMarker(s, body, &next_role);
    std::string content =
        Trim(s.substr(body, next == std::string_view::npos ? std::string_view::npos : next - body));
    if (!turns.empty() && turns.back().role == role) {
      return Status::InvalidArgument("turn " + std::to_string(turns.size() + 1) + " (" +
                                     Speaker(role) + ") follows another " + Speaker(role) +
                                     " turn; expected Human and Assistant to alternate");
    }
    turns.push_back({role, std::move(content)});
    pos = next;
    role = next_role;
  }
  return turns;
}

Result<HhRlhfData> ReadHhRlhf(const std::string& path, const HhRlhfOptions& options) {
  BF_ASSIGN_OR_RETURN(auto reader, curate::LineReader::Open(path));
  const std::string file_name = std::filesystem::path(path).filename().string();
  HhRlhfData data;
  std::string line;
  while (options.limit <= 0 || static_cast<int64_t>(data.pairs.size()) < options.limit) {
    BF_ASSIGN_OR_RETURN(bool more, reader->Next(&line));
    if (!more) break;
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    ++data.lines_read;
    const int64_t n = reader->line_number();
    const std::string where = path + ":" + std::to_string(n);
    Result<PreferencePair> pair = Status::InvalidArgument("unparsed");
    Result<ordered_json> row = curate::ParseJsonLine(line, where);
    if (row.ok()) {
      pair = PairFromRow(*row);
      if (!pair.ok()) pair = Status::InvalidArgument(where + ": " + pair.status().message());
    } else {
      pair = row.status();
    }
    if (!pair.ok()) {
      if (options.strict) return pair.status();
      data.skipped.push_back({n, pair.status().message()});
      continue;
    }
    pair->id = file_name + ":" + std::to_string(n);
    pair->provenance_json =
        curate::DumpJson(ordered_json{{"source", "hh-rlhf"}, {"file", file_name}, {"line", n}});
    data.pairs.push_back(std::move(pair).value());
  }
  return data;
}

}  // namespace breakfix
