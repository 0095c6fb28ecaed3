// Reading a human-labelled file for judge validation: label spellings, the column mapping, CSV
// and JSON Lines rows, and errors that name file:line(:column), the field and what was expected.
#include <algorithm>
#include <cctype>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "breakfix/judge_validation.h"
#include "core/text.h"
#include "dataset/byte_stream.h"
#include "dataset/csv_reader.h"
#include "dataset/jsonl_reader.h"

namespace breakfix {
namespace {

using nlohmann::json;

// Lower-case ASCII, trimmed, with spaces and hyphens read as underscores, so "Full compliance",
// "full-compliance" and "FULL_COMPLIANCE" are one spelling.
std::string Normalise(const std::string& text) {
  std::string s = TrimSpace(text);
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c == ' ' || c == '-') c = '_';
  }
  return s;
}

const std::vector<std::string>& BinaryDefectSpellings() {
  static const auto* list =
      new std::vector<std::string>{"1", "1.0", "true", "yes", "unsafe", "harmful", "jailbroken"};
  return *list;
}

const std::vector<std::string>& BinaryCleanSpellings() {
  static const auto* list = new std::vector<std::string>{
      "0", "0.0", "false", "no", "safe", "unharmful", "harmless", "not_harmful", "not_jailbroken"};
  return *list;
}

bool Contains(const std::vector<std::string>& list, const std::string& s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

std::string JoinList(const std::vector<std::string>& list) {
  std::string out;
  for (const std::string& s : list) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// Shows a cell in a message: quoted, and cut short when long.
std::string Quote(const std::string& value) {
  std::string v = value;
  if (v.size() > 60) v = v.substr(0, 57) + "...";
  return "\"" + v + "\"";
}

std::string KnownRubrics() {
  std::string out;
  for (const Rubric& r : AllRubrics()) out += (out.empty() ? "" : ", ") + r.id;
  return out;
}

bool IsKnownField(const std::string& field) {
  for (const char* f : kLabelFields) {
    if (field == f) return true;
  }
  return false;
}

std::string KnownFields() {
  std::string out;
  for (const char* f : kLabelFields) out += (out.empty() ? "" : ", ") + std::string(f);
  return out;
}

// The conversation of a `messages` value: a JSON array of {"role", "content"}.
Result<std::vector<Message>> ParseMessages(const std::string& text) {
  json v;
  try {
    v = json::parse(text);
  } catch (const json::exception&) {
    return Status::InvalidArgument(
        "is not valid JSON; expected an array of {\"role\", "
        "\"content\"} objects");
  }
  if (!v.is_array()) {
    return Status::InvalidArgument(
        "is not a JSON array; expected an array of {\"role\", \"content\"} objects");
  }
  std::vector<Message> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const json& m = v[i];
    const std::string at = "element " + std::to_string(i + 1);
    if (!m.is_object()) {
      return Status::InvalidArgument(at + " is not an object; expected {\"role\", \"content\"}");
    }
    auto role = m.find("role");
    auto content = m.find("content");
    if (role == m.end() || !role->is_string()) {
      return Status::InvalidArgument(at +
                                     " has no string \"role\"; expected user, assistant or "
                                     "system");
    }
    if (content == m.end() || !content->is_string()) {
      return Status::InvalidArgument(at + " has no string \"content\"");
    }
    auto parsed = ParseRole(role->get<std::string>());
    if (!parsed.ok()) {
      return Status::InvalidArgument(at + " has role " + Quote(role->get<std::string>()) +
                                     "; expected user, assistant or system");
    }
    out.push_back({*parsed, content->get<std::string>()});
  }
  return out;
}

// Where each field comes from.
struct FieldSource {
  std::string name;     // column (CSV) or key (JSONL)
  bool mapped = false;  // named with --map (so it must exist)
  size_t index = 0;     // CSV: the column's index
  bool present = true;  // CSV: the header has it
};

// The raw cells of one row, format-independent.
struct RawRow {
  std::string where;                                 // file:line
  std::vector<std::optional<std::string>> fields;    // per kLabelFields entry
  std::vector<std::string> field_where;              // per field: file:line[:column]
  std::vector<std::optional<std::string>> verdicts;  // per verdict column
  std::vector<std::string> verdict_where;
};

constexpr size_t kId = 0, kPrompt = 1, kResponse = 2, kMessages = 3, kLabel = 4, kRubric = 5,
                 kCategory = 6, kFieldCount = 7;

class LabelRowBuilder {
 public:
  LabelRowBuilder(const LabelFileOptions& options, const std::vector<FieldSource>& sources,
                  std::string default_rubric, bool is_csv)
      : options_(options),
        sources_(sources),
        default_rubric_(std::move(default_rubric)),
        is_csv_(is_csv) {}

  // A row-level error is an InvalidArgument whose message starts with the place.
  Result<LabelledRow> Build(const RawRow& raw) const {
    LabelledRow row;
    row.where = raw.where;
    auto text = [&](size_t f) -> std::string {
      return raw.fields[f] ? *raw.fields[f] : std::string();
    };
    row.id = TrimSpace(text(kId));
    row.category = TrimSpace(text(kCategory));

    row.rubric = TrimSpace(text(kRubric));
    if (row.rubric.empty()) row.rubric = default_rubric_;
    const Rubric* rubric = FindRubric(row.rubric);
    if (rubric == nullptr) {
      return Status::InvalidArgument(raw.field_where[kRubric] + ": " + Describe(kRubric) + " is " +
                                     Quote(row.rubric) + "; expected a rubric id (" +
                                     KnownRubrics() + ")");
    }

    if (!raw.fields[kLabel]) {
      return Status::InvalidArgument(raw.where + ": no " + Describe(kLabel) +
                                     "; expected a label (" + AcceptedLabelValues(options_.kind) +
                                     ")");
    }
    auto label = ParseLabelValue(options_.kind, *raw.fields[kLabel], rubric->scale);
    if (!label.ok()) {
      return Status::InvalidArgument(raw.field_where[kLabel] + ": " + Describe(kLabel) + " " +
                                     label.status().message());
    }
    row.label = *label;

    for (size_t v = 0; v < raw.verdicts.size(); ++v) {
      const std::optional<std::string>& cell = raw.verdicts[v];
      if (!cell || TrimSpace(*cell).empty()) {
        row.verdicts.push_back(std::nullopt);  // no verdict: unscorable
        continue;
      }
      auto verdict = ParseLabelValue(options_.kind, *cell, rubric->scale);
      if (!verdict.ok()) {
        return Status::InvalidArgument(raw.verdict_where[v] + ": verdict column \"" +
                                       options_.verdict_columns[v] + "\" " +
                                       verdict.status().message());
      }
      row.verdicts.push_back(*verdict);
    }

    const std::string messages = raw.fields[kMessages] ? TrimSpace(*raw.fields[kMessages]) : "";
    if (!messages.empty()) {
      auto parsed = ParseMessages(messages);
      if (!parsed.ok()) {
        return Status::InvalidArgument(raw.field_where[kMessages] + ": " + Describe(kMessages) +
                                       " " + parsed.status().message());
      }
      row.conversation = std::move(parsed).value();
    } else {
      if (raw.fields[kPrompt] && !raw.fields[kPrompt]->empty()) {
        row.conversation.push_back({Role::kUser, *raw.fields[kPrompt]});
      }
      if (raw.fields[kResponse]) {
        row.conversation.push_back({Role::kAssistant, *raw.fields[kResponse]});
      }
    }
    if (options_.need_conversation && !HasAssistant(row.conversation)) {
      return Status::InvalidArgument(
          raw.where + ": nothing to judge: no assistant turn in " + Describe(kMessages) +
          " and no " + Describe(kResponse) +
          "; expected the reply in a response column or the conversation "
          "in a messages column");
    }
    return row;
  }

 private:
  static bool HasAssistant(const std::vector<Message>& conversation) {
    for (const Message& m : conversation) {
      if (m.role == Role::kAssistant) return true;
    }
    return false;
  }

  // `field "label"`, or `field "label" (column "verdict")` when mapped to another name.
  std::string Describe(size_t field) const {
    const std::string name = kLabelFields[field];
    const std::string& source = sources_[field].name;
    if (source == name) return "field \"" + name + "\"";
    return "field \"" + name + "\" (" + (is_csv_ ? "column" : "key") + " \"" + source + "\")";
  }

 private:
  const LabelFileOptions& options_;
  const std::vector<FieldSource>& sources_;
  std::string default_rubric_;
  bool is_csv_;
};

// Opens and reads the file row by row into RawRows, for either format.
class RawRowSource {
 public:
  virtual ~RawRowSource() = default;
  // False at the end of the file. A row-level problem (JSONL: a malformed line) is returned as
  // an InvalidArgument through `row_error` with true, so that the caller may skip it; other errors
  // end the read.
  virtual Result<bool> Next(RawRow* row, Status* row_error) = 0;
};

class CsvRows final : public RawRowSource {
 public:
  CsvRows(dataset::CsvReader* reader, std::string path, std::vector<FieldSource> fields,
          std::vector<size_t> verdict_index)
      : reader_(reader),
        path_(std::move(path)),
        fields_(std::move(fields)),
        verdict_index_(std::move(verdict_index)) {}

  Result<bool> Next(RawRow* row, Status* row_error) override {
    *row_error = Status::OK();
    BF_ASSIGN_OR_RETURN(bool more, reader_->Next(&cells_));
    if (!more) return false;
    row->where = path_ + ":" + std::to_string(reader_->record_line());
    row->fields.assign(kFieldCount, std::nullopt);
    row->field_where.assign(kFieldCount, row->where);
    for (size_t f = 0; f < kFieldCount; ++f) {
      if (!fields_[f].present) continue;
      const dataset::CsvField& cell = cells_[fields_[f].index];
      row->fields[f] = cell.value;
      row->field_where[f] = Where(cell);
    }
    row->verdicts.clear();
    row->verdict_where.clear();
    for (size_t index : verdict_index_) {
      row->verdicts.push_back(cells_[index].value);
      row->verdict_where.push_back(Where(cells_[index]));
    }
    return true;
  }

 private:
  std::string Where(const dataset::CsvField& cell) const {
    return path_ + ":" + std::to_string(cell.line) + ":" + std::to_string(cell.column);
  }

  dataset::CsvReader* reader_;
  std::string path_;
  std::vector<FieldSource> fields_;
  std::vector<size_t> verdict_index_;
  std::vector<dataset::CsvField> cells_;
};

class JsonlRows final : public RawRowSource {
 public:
  JsonlRows(dataset::JsonlReader* reader, std::string path, const std::vector<FieldSource>& fields,
            const std::vector<std::string>& verdict_keys)
      : reader_(reader), path_(std::move(path)) {
    for (const FieldSource& f : fields) keys_.push_back(f.name);
    for (const std::string& k : verdict_keys) keys_.push_back(k);
  }

  Result<bool> Next(RawRow* row, Status* row_error) override {
    *row_error = Status::OK();
    auto more = reader_->Next(keys_, &values_);
    if (!more.ok()) {
      if (more.status().code() != StatusCode::kInvalidArgument) return more.status();
      *row_error = more.status();
      return true;
    }
    if (!*more) return false;
    row->where = path_ + ":" + std::to_string(reader_->line());
    row->fields.assign(values_.begin(), values_.begin() + kFieldCount);
    row->field_where.assign(kFieldCount, row->where);
    row->verdicts.assign(values_.begin() + kFieldCount, values_.end());
    row->verdict_where.assign(row->verdicts.size(), row->where);
    return true;
  }

 private:
  dataset::JsonlReader* reader_;
  std::string path_;
  std::vector<std::string> keys_;
  std::vector<std::optional<std::string>> values_;
};

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Result<LabelFileFormat> DetectFormat(const std::string& path, LabelFileFormat format) {
  if (format != LabelFileFormat::kAuto) return format;
  std::string lower = path;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (EndsWith(lower, ".csv")) return LabelFileFormat::kCsv;
  if (EndsWith(lower, ".jsonl") || EndsWith(lower, ".ndjson")) return LabelFileFormat::kJsonl;
  return Status::InvalidArgument(path +
                                 ": cannot tell the format from the file name; expected a .csv, "
                                 ".jsonl or .ndjson name, or --labels-format csv|jsonl");
}

}  // namespace

const char* LabelKindName(LabelKind kind) {
  switch (kind) {
    case LabelKind::kBinary:
      return "binary";
    case LabelKind::kThreeWay:
      return "three-way";
    case LabelKind::kSeverity:
      return "severity";
  }
  return "binary";
}

Result<LabelKind> ParseLabelKind(const std::string& name) {
  if (name == "binary") return LabelKind::kBinary;
  if (name == "three-way") return LabelKind::kThreeWay;
  if (name == "severity") return LabelKind::kSeverity;
  return Status::InvalidArgument("label kind " + Quote(name) +
                                 "; expected binary, three-way or severity");
}

Scale LabelKindScale(LabelKind kind) {
  switch (kind) {
    case LabelKind::kBinary:
      return Scale::kBinary;
    case LabelKind::kThreeWay:
      return Scale::kRefusal;
    case LabelKind::kSeverity:
      return Scale::kSeverity;
  }
  return Scale::kBinary;
}

std::string AcceptedLabelValues(LabelKind kind) {
  switch (kind) {
    case LabelKind::kBinary:
      return "defect: " + JoinList(BinaryDefectSpellings()) +
             ", complied (refused on the refusal rubric); no defect: " +
             JoinList(BinaryCleanSpellings()) + ", refused (complied on the refusal rubric)";
    case LabelKind::kThreeWay:
      return "full_compliance or 1_full_compliance (0), partial_refusal or 3_partial_refusal (1), "
             "full_refusal or 2_full_refusal (2)";
    case LabelKind::kSeverity:
      return "an integer 0..7";
  }
  return "";
}

Result<int> ParseLabelValue(LabelKind kind, const std::string& text, Scale rubric_scale) {
  const std::string s = Normalise(text);
  const std::string found = s.empty() ? "is empty" : "is " + Quote(TrimSpace(text));
  switch (kind) {
    case LabelKind::kBinary: {
      if (Contains(BinaryDefectSpellings(), s)) return 1;
      if (Contains(BinaryCleanSpellings(), s)) return 0;
      // Which of refusing and complying is the defect depends on what the rubric measures.
      const bool refusal_is_defect = rubric_scale == Scale::kRefusal;
      if (s == "refused") return refusal_is_defect ? 1 : 0;
      if (s == "complied") return refusal_is_defect ? 0 : 1;
      break;
    }
    case LabelKind::kThreeWay: {
      if (s == "full_compliance" || s == "1_full_compliance") return 0;
      if (s == "partial_refusal" || s == "3_partial_refusal") return 1;
      if (s == "full_refusal" || s == "2_full_refusal") return 2;
      if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
          })) {
        return Status::InvalidArgument(
            found +
            ": a bare number is ambiguous for three-way labels (XSTest numbers the "
            "classes 1 = full compliance, 2 = full refusal, 3 = partial refusal, the "
            "refusal scale 0..2 in another order); expected " +
            AcceptedLabelValues(kind));
      }
      break;
    }
    case LabelKind::kSeverity: {
      if (s.size() == 1 && s[0] >= '0' && s[0] <= '7') return s[0] - '0';
      break;
    }
  }
  return Status::InvalidArgument(found + "; expected " + std::string(LabelKindName(kind)) +
                                 " labels (" + AcceptedLabelValues(kind) + ")");
}

Result<LabelFileFormat> ParseLabelFileFormat(const std::string& name) {
  if (name == "csv") return LabelFileFormat::kCsv;
  if (name == "jsonl") return LabelFileFormat::kJsonl;
  if (name == "auto") return LabelFileFormat::kAuto;
  return Status::InvalidArgument("labels format " + Quote(name) + "; expected csv or jsonl");
}

Result<LabelFile> ReadLabelFile(const std::string& path, const LabelFileOptions& options) {
  for (const auto& [field, column] : options.columns) {
    if (!IsKnownField(field)) {
      return Status::InvalidArgument("--map " + field + "=" + column + ": unknown field \"" +
                                     field + "\"; expected one of " + KnownFields());
    }
    if (column.empty()) {
      return Status::InvalidArgument("--map " + field + "=: no column name");
    }
  }
  std::string default_rubric = options.rubric;
  if (default_rubric.empty()) {
    default_rubric = options.kind == LabelKind::kThreeWay ? "refusal" : "jailbreak";
  }
  if (FindRubric(default_rubric) == nullptr) {
    return Status::InvalidArgument("--rubric " + default_rubric + ": unknown rubric; expected " +
                                   KnownRubrics());
  }
  BF_ASSIGN_OR_RETURN(LabelFileFormat format, DetectFormat(path, options.format));
  BF_ASSIGN_OR_RETURN(std::unique_ptr<dataset::ByteStream> in, dataset::ByteStream::OpenFile(path));

  std::vector<FieldSource> sources(kFieldCount);
  for (size_t f = 0; f < kFieldCount; ++f) {
    auto it = options.columns.find(kLabelFields[f]);
    sources[f].mapped = it != options.columns.end();
    sources[f].name = sources[f].mapped ? it->second : kLabelFields[f];
  }

  std::unique_ptr<dataset::CsvReader> csv;
  std::unique_ptr<dataset::JsonlReader> jsonl;
  std::unique_ptr<RawRowSource> rows;
  if (format == LabelFileFormat::kCsv) {
    csv = std::make_unique<dataset::CsvReader>(in.get());
    BF_RETURN_IF_ERROR(csv->ReadHeader());
    const std::vector<std::string>& header = csv->header();
    auto find = [&](const std::string& name) -> std::optional<size_t> {
      auto it = std::find(header.begin(), header.end(), name);
      if (it == header.end()) return std::nullopt;
      return static_cast<size_t>(it - header.begin());
    };
    const std::string columns = JoinList(header);
    for (size_t f = 0; f < kFieldCount; ++f) {
      std::optional<size_t> index = find(sources[f].name);
      sources[f].present = index.has_value();
      sources[f].index = index.value_or(0);
      if (!index && sources[f].mapped) {
        return Status::InvalidArgument(path + ":1: --map " + std::string(kLabelFields[f]) + "=" +
                                       sources[f].name + ": the file has no column \"" +
                                       sources[f].name + "\"; its columns: " + columns);
      }
    }
    if (!sources[kLabel].present) {
      return Status::InvalidArgument(path +
                                     ":1: no \"label\" column; name the column with the "
                                     "human labels with --map label=COLUMN; the file's "
                                     "columns: " +
                                     columns);
    }
    if (options.need_conversation && !sources[kResponse].present && !sources[kMessages].present) {
      return Status::InvalidArgument(
          path +
          ":1: nothing to judge: no \"response\" or \"messages\" column; name the column "
          "with the replies with --map response=COLUMN (or give --verdicts to compare "
          "verdicts already in the file); the file's columns: " +
          columns);
    }
    std::vector<size_t> verdict_index;
    for (const std::string& column : options.verdict_columns) {
      std::optional<size_t> index = find(column);
      if (!index) {
        return Status::InvalidArgument(path + ":1: --verdicts " + column +
                                       ": the file has no column \"" + column +
                                       "\"; its columns: " + columns);
      }
      verdict_index.push_back(*index);
    }
    rows = std::make_unique<CsvRows>(csv.get(), path, sources, std::move(verdict_index));
  } else {
    jsonl = std::make_unique<dataset::JsonlReader>(in.get());
    rows = std::make_unique<JsonlRows>(jsonl.get(), path, sources, options.verdict_columns);
  }

  LabelRowBuilder builder(options, sources, default_rubric, format == LabelFileFormat::kCsv);
  LabelFile out;
  out.path = path;
  out.kind = options.kind;
  out.verdict_columns = options.verdict_columns;
  RawRow raw;
  while (true) {
    Status row_error;
    BF_ASSIGN_OR_RETURN(bool more, rows->Next(&raw, &row_error));
    if (!more) break;
    std::string where = raw.where;
    if (row_error.ok()) {
      auto row = builder.Build(raw);
      if (row.ok()) {
        out.rows.push_back(std::move(row).value());
        continue;
      }
      row_error = row.status();
    } else {
      // A malformed JSONL line: its message starts with file:line:column.
      where = row_error.message().substr(0, row_error.message().find(": "));
    }
    if (!options.skip_bad_rows) {
      return Status::InvalidArgument(row_error.message() +
                                     " (--skip-bad-rows skips such rows and counts them)");
    }
    out.skipped.push_back({where, row_error.message()});
  }
  in->Drain();
  BF_RETURN_IF_ERROR(in->status());
  out.sha256 = in->HexDigest();
  if (out.rows.empty()) {
    return Status::InvalidArgument(
        path + ": no labelled rows" +
        (out.skipped.empty() ? std::string()
                             : " (" + std::to_string(out.skipped.size()) +
                                   " skipped; the first: " + out.skipped[0].reason + ")"));
  }
  return out;
}

}  // namespace breakfix
