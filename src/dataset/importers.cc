// ImportDataset: reads a dataset file row by row following its ImportPlan (import_plan.h),
// turns each row into a normalised JSON record or a reported bad row, and writes the outputs
// only once the whole input has been read, so a failed import leaves nothing behind.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "breakfix/importers.h"
#include "core/atomic_file.h"
#include "core/text.h"
#include "dataset/byte_stream.h"
#include "dataset/csv_reader.h"
#include "dataset/encoding.h"
#include "dataset/import_plan.h"
#include "dataset/jsonl_reader.h"
#include "dataset/location.h"

namespace breakfix::dataset {
namespace {

using nlohmann::ordered_json;

constexpr char kLegacyHint[] =
    "UTF-8 text (if the file is in a legacy encoding, pass --encoding latin1, cp1252 or "
    "macroman)";

std::string Plural(int64_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// Compact JSON with the text left as UTF-8 (every value was checked to be valid UTF-8).
std::string Dump(const ordered_json& j) {
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

// CRLF line breaks inside a value become LF, so records read the same whatever the source's
// line endings. A lone CR is kept.
std::string NormalizeNewlines(std::string text) {
  size_t w = 0;
  for (size_t r = 0; r < text.size(); ++r) {
    if (text[r] == '\r' && r + 1 < text.size() && text[r + 1] == '\n') continue;
    text[w++] = text[r];
  }
  text.resize(w);
  return text;
}

bool IsAllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// One value of a row, as the plan's field rule found it.
struct Cell {
  std::optional<std::string> text;  // nullopt: the JSONL object has no such key
  Location where;
  std::string source;  // the header column or JSONL key it came from
};

struct RawRow {
  int64_t line = 0;
  std::vector<Cell> cells;  // one per ImportPlan::fields entry
};

struct RowProblem {
  int64_t line = 0;
  std::string reason;  // a kSkip* value
  std::string message;
};

enum class ReadOutcome { kRow, kBadRow, kEnd };

// Rows of the input, before any field is interpreted.
class RowSource {
 public:
  virtual ~RowSource() = default;
  // kRow fills *row, kBadRow fills *problem (the row was consumed), kEnd at the end of input.
  // An error Status is fatal: the input cannot be read on.
  virtual Result<ReadOutcome> Next(RawRow* row, RowProblem* problem) = 0;
  // Header columns that no field uses.
  virtual std::vector<std::string> IgnoredColumns() const { return {}; }
};

// The columns every other named format requires, when `header` has them all: a hint that the
// user picked the wrong format.
std::string OtherFormatHint(const ImportPlan& plan, const std::vector<std::string>& header) {
  for (const std::string& name : DatasetFormatNames()) {
    auto format = ParseDatasetFormat(name);
    if (!format.ok() || *format == plan.format || *format == DatasetFormat::kCsv ||
        *format == DatasetFormat::kJsonl || *format == DatasetFormat::kHhRlhf) {
      continue;
    }
    ImportOptions probe;
    probe.format = *format;
    probe.input = "probe";
    probe.out_dir = "probe";
    auto other = MakeImportPlan(probe);
    if (!other.ok()) continue;
    bool all = true;
    for (const FieldRule& rule : other->fields) {
      if (!rule.required_column) continue;
      const bool found = std::any_of(rule.sources.begin(), rule.sources.end(), [&](auto& s) {
        return std::find(header.begin(), header.end(), s) != header.end();
      });
      all = all && found;
    }
    if (all) return " (this header matches the " + name + " format)";
  }
  return "";
}

class CsvSource : public RowSource {
 public:
  static Result<std::unique_ptr<RowSource>> Open(const ImportPlan& plan, const std::string& path,
                                                 std::string text) {
    std::unique_ptr<CsvSource> source(new CsvSource(plan, path, std::move(text)));
    BF_RETURN_IF_ERROR(source->ReadHeader());
    return std::unique_ptr<RowSource>(std::move(source));
  }

  Result<ReadOutcome> Next(RawRow* row, RowProblem* problem) override {
    Result<bool> got = csv_.Next(&fields_);
    if (!got.ok()) {
      const Status& s = got.status();
      // An over-long record leaves the reader inside it: no later row can be trusted.
      if (s.code() != StatusCode::kInvalidArgument ||
          s.message().find("longer than") != std::string::npos) {
        return s;
      }
      problem->line = csv_.record_line();
      // CsvReader words a field-count mismatch as "a row with N fields".
      problem->reason =
          s.message().find(": a row with ") != std::string::npos ? kSkipColumnCount : kSkipBadCsv;
      problem->message = s.message();
      return ReadOutcome::kBadRow;
    }
    if (!*got) return ReadOutcome::kEnd;
    const int64_t line = csv_.record_line();
    for (size_t c = 0; c < fields_.size(); ++c) {
      const std::string& value = fields_[c].value;
      const size_t bad = FindInvalidUtf8(value);
      if (bad == std::string::npos) continue;
      const int64_t bad_line =
          fields_[c].line + std::count(value.begin(), value.begin() + bad, '\n');
      problem->line = line;
      problem->reason = kSkipInvalidUtf8;
      problem->message = path_ + ":" + std::to_string(bad_line) + ": invalid UTF-8 (" +
                         DescribeInvalidUtf8(value, bad) + ") in column '" + header_[c] +
                         "'; expected " + kLegacyHint;
      return ReadOutcome::kBadRow;
    }
    row->line = line;
    row->cells.clear();
    for (size_t k = 0; k < plan_.fields.size(); ++k) {
      Cell cell;
      if (index_[k] >= 0) {
        const CsvField& f = fields_[static_cast<size_t>(index_[k])];
        cell.text = f.value;
        cell.where = {path_, f.line, f.column};
        cell.source = header_[static_cast<size_t>(index_[k])];
      } else {
        cell.text = std::string();  // an optional column the header lacks
        cell.where = {path_, line, 1};
        cell.source = plan_.fields[k].sources[0];
      }
      row->cells.push_back(std::move(cell));
    }
    return ReadOutcome::kRow;
  }

  std::vector<std::string> IgnoredColumns() const override {
    std::vector<std::string> out;
    for (size_t c = 0; c < header_.size(); ++c) {
      if (std::find(index_.begin(), index_.end(), static_cast<int>(c)) == index_.end()) {
        out.push_back(header_[c]);
      }
    }
    return out;
  }

 private:
  CsvSource(const ImportPlan& plan, const std::string& path, std::string text)
      : plan_(plan),
        path_(path),
        in_(ByteStream::FromString(std::move(text), path)),
        csv_(in_.get()) {}

  Status ReadHeader() {
    BF_RETURN_IF_ERROR(csv_.ReadHeader());
    for (const std::string& name : csv_.header()) {
      const size_t bad = FindInvalidUtf8(name);
      if (bad != std::string::npos) {
        return ErrorAt({path_, 1, 1},
                       "invalid UTF-8 (" + DescribeInvalidUtf8(name, bad) + ") in the header",
                       kLegacyHint);
      }
      header_.push_back(TrimSpace(name));
    }
    // CSV records end at LF or CRLF; a file that ends its lines with CR alone (classic Mac OS)
    // reads as one long header record with CRs inside its column names.
    for (const std::string& name : header_) {
      if (name.find('\r') == std::string::npos) continue;
      return ErrorAt({path_, 1, 1}, "a carriage return inside the header's column names",
                     "lines that end in LF or CRLF (the file seems to end its lines with CR "
                     "alone, as classic Mac OS did; convert them to LF)");
    }
    std::vector<std::string> missing;
    for (const FieldRule& rule : plan_.fields) {
      int found = -1;
      for (const std::string& source : rule.sources) {
        for (size_t c = 0; c < header_.size(); ++c) {
          if (header_[c] != source) continue;
          if (found >= 0 && header_[static_cast<size_t>(found)] == source) {
            return ErrorAt({path_, 1, 1}, "the header names column '" + source + "' twice",
                           "unique column names");
          }
          if (found < 0) found = static_cast<int>(c);
        }
        if (found >= 0) break;
      }
      if (found < 0 && rule.required_column) {
        if (plan_.user_mapped) {
          return ErrorAt({path_, 1, 1},
                         "no column '" + rule.sources[0] + "' in the header (" + rule.origin + ")",
                         "one of the header's columns: " + JoinText(header_));
        }
        const std::string names = JoinText(rule.sources, " or ");
        if (std::find(missing.begin(), missing.end(), names) == missing.end()) {
          missing.push_back(names);
        }
      }
      index_.push_back(found);
    }
    if (!missing.empty()) {
      return ErrorAt({path_, 1, 1},
                     "a header with the columns " + JoinText(header_) + ", without " +
                         JoinText(missing) + OtherFormatHint(plan_, header_),
                     "the " + plan_.format_name + " columns: " + plan_.documented_header);
    }
    return Status::OK();
  }

  const ImportPlan& plan_;
  std::string path_;
  std::unique_ptr<ByteStream> in_;
  CsvReader csv_;
  std::vector<std::string> header_;  // trimmed
  std::vector<int> index_;           // per plan field: its header column, or -1
  std::vector<CsvField> fields_;
};

class JsonlSource : public RowSource {
 public:
  static Result<std::unique_ptr<RowSource>> Open(const ImportPlan& plan, const std::string& path,
                                                 std::string text) {
    std::unique_ptr<JsonlSource> source(new JsonlSource(path));
    source->FindBadLines(text);
    source->in_ = ByteStream::FromString(std::move(text), path);
    source->reader_ = std::make_unique<JsonlReader>(source->in_.get());
    for (const FieldRule& rule : plan.fields) source->keys_.push_back(rule.sources[0]);
    return std::unique_ptr<RowSource>(std::move(source));
  }

  Result<ReadOutcome> Next(RawRow* row, RowProblem* problem) override {
    Result<bool> got = reader_->Next(keys_, &values_);
    if (!got.ok()) {
      const Status& s = got.status();
      if (s.code() != StatusCode::kInvalidArgument ||
          s.message().find("a line longer than") != std::string::npos) {
        return s;
      }
      return Problem(reader_->line(), s.message(), problem);
    }
    if (!*got) return ReadOutcome::kEnd;
    const int64_t line = reader_->line();
    // nlohmann's parser rejects ill-formed UTF-8, so this only guards against a future reader
    // that does not.
    if (bad_lines_.count(line) != 0) return Problem(line, "", problem);
    row->line = line;
    row->cells.clear();
    for (size_t k = 0; k < values_.size(); ++k) {
      row->cells.push_back({values_[k], Location{path_, line, 1}, keys_[k]});
    }
    return ReadOutcome::kRow;
  }

 private:
  explicit JsonlSource(const std::string& path) : path_(path) {}

  // Lines with ill-formed UTF-8, found before parsing so that such a line is reported as an
  // encoding problem rather than as the JSON syntax error the parser would make of it.
  void FindBadLines(const std::string& text) {
    int64_t line = 1;
    size_t start = 0;
    while (start <= text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      const std::string_view view(text.data() + start, end - start);
      const size_t bad = FindInvalidUtf8(view);
      if (bad != std::string::npos) {
        bad_lines_[line] = path_ + ":" + std::to_string(line) + ":" +
                           std::to_string(CountCodePoints(std::string(view), 0, bad) + 1) +
                           ": invalid UTF-8 (" + DescribeInvalidUtf8(view, bad) + "); expected " +
                           kLegacyHint;
      }
      if (end == text.size()) break;
      start = end + 1;
      ++line;
    }
  }

  ReadOutcome Problem(int64_t line, const std::string& json_error, RowProblem* problem) {
    problem->line = line;
    auto bad = bad_lines_.find(line);
    if (bad != bad_lines_.end()) {
      problem->reason = kSkipInvalidUtf8;
      problem->message = bad->second;
    } else {
      problem->reason = kSkipBadJson;
      problem->message = json_error;
    }
    return ReadOutcome::kBadRow;
  }

  std::string path_;
  std::unique_ptr<ByteStream> in_;
  std::unique_ptr<JsonlReader> reader_;
  std::vector<std::string> keys_;
  std::vector<std::optional<std::string>> values_;
  std::map<int64_t, std::string> bad_lines_;  // line -> the error message for it
};

// Turns raw rows into records, checking ids, labels, categories and messages.
class RecordBuilder {
 public:
  RecordBuilder(const ImportPlan& plan, const std::string& path) : plan_(plan), path_(path) {}

  // Fills *record and returns true, or fills *problem and returns false.
  bool Build(const RawRow& row, int64_t ordinal, ordered_json* record, RowProblem* problem) {
    problem->line = row.line;
    std::string id, prompt, response, category = plan_.default_category, raw_category;
    std::optional<std::string> label;
    std::vector<Message> messages;
    std::vector<std::pair<std::string, std::string>> extras;
    const Location* id_where = nullptr;
    for (size_t k = 0; k < plan_.fields.size(); ++k) {
      const FieldRule& rule = plan_.fields[k];
      const Cell& cell = row.cells[k];
      if (!cell.text.has_value()) {
        return Fail(kSkipMissingValue,
                    ErrorAt(cell.where,
                            "no key '" + rule.sources[0] + "' in this object (" + rule.origin + ")",
                            "every mapped key on every line"),
                    problem);
      }
      std::string value = NormalizeNewlines(*cell.text);
      if (rule.required_value && TrimSpace(value).empty()) {
        return Fail(kSkipMissingValue,
                    ErrorAt(cell.where,
                            "an empty " + Source(rule, cell) + ", which holds the " + rule.field,
                            "a non-empty " + rule.field + " on every row"),
                    problem);
      }
      switch (rule.role) {
        case FieldRole::kId:
          id = TrimSpace(value);
          if (!plan_.numeric_id_prefix.empty() && IsAllDigits(id)) {
            id = plan_.numeric_id_prefix + id;
          }
          id_where = &cell.where;
          break;
        case FieldRole::kPrompt:
          prompt = std::move(value);
          break;
        case FieldRole::kResponse:
          response = std::move(value);
          break;
        case FieldRole::kMessages: {
          Status parsed = ParseMessages(value, rule, cell, &messages);
          if (!parsed.ok()) return Fail(kSkipBadMessages, parsed, problem);
          break;
        }
        case FieldRole::kCategory:
          raw_category = TrimSpace(value);
          category = SanitizeCategory(raw_category);
          break;
        case FieldRole::kLabel:
          label = TrimSpace(value);
          if (!plan_.labels.empty() &&
              std::find(plan_.labels.begin(), plan_.labels.end(), *label) == plan_.labels.end()) {
            return Fail(kSkipUnknownLabel,
                        ErrorAt(cell.where, "label '" + *label + "' in " + Source(rule, cell),
                                "one of: " + JoinText(plan_.labels)),
                        problem);
          }
          break;
        case FieldRole::kExtra:
          extras.emplace_back(rule.field, std::move(value));
          break;
      }
    }
    if (id.empty()) id = plan_.generated_id_prefix + std::to_string(ordinal);
    auto [seen, inserted] = ids_.emplace(id, row.line);
    if (!inserted) {
      return Fail(kSkipDuplicateId,
                  ErrorAt(id_where != nullptr ? *id_where : Location{path_, row.line, 1},
                          "id '" + id + "', already used by the row at line " +
                              std::to_string(seen->second),
                          "a unique id on every row"),
                  problem);
    }

    *record = ordered_json::object();
    (*record)["id"] = id;
    if (plan_.conversations) {
      if (messages.empty()) {
        messages = {{Role::kUser, prompt}, {Role::kAssistant, response}};
      }
      ordered_json list = ordered_json::array();
      for (const Message& m : messages) {
        list.push_back({{"role", RoleName(m.role)}, {"content", m.content}});
      }
      (*record)["messages"] = std::move(list);
      if (HasRole(FieldRole::kCategory)) (*record)["category"] = category;
    } else {
      (*record)["prompt"] = prompt;
      (*record)["category"] = category;
      categories_.insert(category);
    }
    if (label.has_value()) (*record)["label"] = *label;
    std::string context;
    for (auto& [name, value] : extras) {
      if (name == "context") context = value;
      (*record)[name] = value;
    }
    if (!plan_.raw_category_field.empty()) (*record)[plan_.raw_category_field] = raw_category;
    if (plan_.context_input) (*record)["input"] = ContextInput(context, prompt);
    return true;
  }

  // The suite's column mapping: every record field but id and category is a parameter.
  std::vector<std::string> ParamFields() const {
    std::vector<std::string> out = {"prompt"};
    for (const FieldRule& rule : plan_.fields) {
      if (rule.role == FieldRole::kLabel) out.push_back(rule.field);
    }
    for (const FieldRule& rule : plan_.fields) {
      if (rule.role == FieldRole::kExtra) out.push_back(rule.field);
    }
    if (!plan_.raw_category_field.empty()) out.push_back(plan_.raw_category_field);
    if (plan_.context_input) out.push_back("input");
    return out;
  }

  std::vector<std::string> Categories() const {
    return std::vector<std::string>(categories_.begin(), categories_.end());
  }

  // HarmBench's own layout for a contextual behaviour: the context, a "---" line, then the
  // behaviour. Without a context the behaviour alone.
  static std::string ContextInput(const std::string& context, const std::string& prompt) {
    if (TrimSpace(context).empty()) return prompt;
    return context + "\n\n---\n\n" + prompt;
  }

 private:
  bool Fail(const char* reason, const Status& status, RowProblem* problem) {
    problem->reason = reason;
    problem->message = status.message();
    return false;
  }

  bool HasRole(FieldRole role) const {
    return std::any_of(plan_.fields.begin(), plan_.fields.end(),
                       [&](const FieldRule& r) { return r.role == role; });
  }

  // How a value's source is named in messages: "value in column 'Behavior'", or "value at key
  // 'q' (--map prompt=q)".
  std::string Source(const FieldRule& rule, const Cell& cell) const {
    std::string s = (plan_.jsonl ? "value at key '" : "value in column '") + cell.source + "'";
    if (!rule.origin.empty()) s += " (" + rule.origin + ")";
    return s;
  }

  // A list of {role, content} objects, given as JSON text (a JSONL array comes back as its
  // compact JSON text; a CSV cell or a JSON string may hold the same text).
  Status ParseMessages(const std::string& text, const FieldRule& rule, const Cell& cell,
                       std::vector<Message>* out) {
    const Location& where = cell.where;
    const std::string what = rule.field + " (" + Source(rule, cell) + ")";
    const std::string expected =
        "a non-empty JSON list of {\"role\": system|user|assistant, \"content\": text}";
    ordered_json list;
    try {
      list = ordered_json::parse(text);
    } catch (const ordered_json::exception& e) {
      return ErrorAt(where, what + " that is not JSON", expected);
    }
    if (!list.is_array() || list.empty()) {
      return ErrorAt(where, what + (list.is_array() ? " with no messages" : " that is not a list"),
                     expected);
    }
    out->clear();
    for (size_t i = 0; i < list.size(); ++i) {
      const ordered_json& m = list[i];
      const std::string at = rule.field + "[" + std::to_string(i) + "]";
      if (!m.is_object()) return ErrorAt(where, at + " is not an object", expected);
      auto role = m.find("role");
      auto content = m.find("content");
      if (role == m.end() || !role->is_string()) {
        return ErrorAt(where, at + " has no text \"role\"", expected);
      }
      Result<Role> parsed = ParseRole(role->get<std::string>());
      if (!parsed.ok()) {
        return ErrorAt(where, at + " has role '" + role->get<std::string>() + "'",
                       "system, user or assistant");
      }
      if (content == m.end() || !content->is_string()) {
        return ErrorAt(where, at + " has no text \"content\"", expected);
      }
      out->push_back({*parsed, NormalizeNewlines(content->get<std::string>())});
    }
    return Status::OK();
  }

  const ImportPlan& plan_;
  std::string path_;
  std::map<std::string, int64_t> ids_;  // id -> the line that used it first
  std::set<std::string> categories_;
};

// Reads the whole input as UTF-8: checks its first bytes, and transcodes a legacy encoding.
Result<std::string> ReadInputText(const std::string& path, TextEncoding encoding, Env* env) {
  BF_ASSIGN_OR_RETURN(std::string bytes, env->ReadFile(path));
  if (bytes.size() >= 2 && bytes[0] == '\x1F' && bytes[1] == '\x8B') {
    return Status::InvalidArgument(path +
                                   ": gzip-compressed data; expected plain text (decompress it "
                                   "first: only the hh-rlhf format reads .gz files)");
  }
  const std::string bom = ByteOrderMarkName(bytes);
  if (!bom.empty() && bom != "UTF-8") {
    return Status::InvalidArgument(
        path + ":1:1: a " + bom + " byte order mark; expected UTF-8 or a single-byte encoding " +
        "(convert the file first, e.g. iconv -f " + bom.substr(0, 6) + " -t UTF-8)");
  }
  if (encoding == TextEncoding::kUtf8) return bytes;
  if (bom == "UTF-8") {
    return Status::InvalidArgument(path + ":1:1: a UTF-8 byte order mark in a file read as " +
                                   TextEncodingName(encoding) + "; expected " +
                                   TextEncodingName(encoding) +
                                   " text (the file looks like UTF-8: leave out --encoding)");
  }
  std::string text;
  AppendAsUtf8(bytes, encoding, &text);
  return text;
}

std::string Quote(const std::string& s) { return Dump(ordered_json(s)); }

// A suite that runs the imported prompts: one single-turn family importing items.jsonl.
std::string SuiteYaml(const ImportPlan& plan, const ImportOptions& options,
                      const ImportSummary& summary, const std::vector<std::string>& params) {
  const std::string input_name = std::filesystem::path(options.input).filename().string();
  std::string title = plan.title;
  if (plan.rubric == "refusal") {
    title += " (refusals: partial or full)";
  } else {
    title += " (DR-" + std::to_string(plan.threshold) + ")";
  }
  std::string y;
  y += "# Written by `breakfix import " + plan.format_name + "` from " + input_name + ".\n";
  y += "# The items are in items.jsonl beside this file; `columns:` below maps its fields to the\n";
  y += "# item id, the category and the template parameters. Check the suite with\n";
  y += "#   breakfix suite check <this file>\n";
  y += "name: " + Quote(plan.suite_name) + "\n";
  y += "description: " +
       Quote("Imported from " + input_name + " by breakfix import " + plan.format_name + ": " +
             Plural(summary.rows_written, "item", "items") +
             (summary.rows_skipped > 0
                  ? " (" + Plural(summary.rows_skipped, "row", "rows") + " skipped)"
                  : "") +
             ".") +
       "\n";
  y += "families:\n";
  y += "  - name: " + plan.family + "\n";
  y += "    title: " + Quote(title) + "\n";
  y += "    metric: defect_rate\n";
  y += "    threshold: " + std::to_string(plan.threshold) + "\n";
  y += "    turns: single\n";
  y += "    rubric: " + plan.rubric + "\n";
  y += "    categories:\n";
  for (const std::string& c : summary.categories) y += "      - " + Quote(c) + "\n";
  y += "    templates:\n";
  y += "      ask:\n";
  y += std::string("        user: \"{{") + (plan.context_input ? "input" : "prompt") + "}}\"\n";
  y += "    import:\n";
  y += "      - file: items.jsonl\n";
  y += "        format: jsonl\n";
  y += "        template: ask\n";
  y += "        columns:\n";
  y += "          id: id\n";
  y += "          category: category\n";
  for (const std::string& p : params) y += "          " + Quote(p) + ": " + Quote(p) + "\n";
  return y;
}

std::string SkippedJsonl(const std::vector<SkippedRow>& skipped) {
  std::string out;
  for (const SkippedRow& s : skipped) {
    out += Dump(ordered_json{{"line", s.line}, {"reason", s.reason}, {"message", s.message}});
    out += '\n';
  }
  return out;
}

struct OutputFile {
  std::string name;
  std::string contents;
  std::string what;
};

// Creates the directory and writes every file atomically, in order.
Status WriteOutputs(const std::string& dir, const std::vector<OutputFile>& files, Env* env,
                    ImportSummary* summary) {
  BF_RETURN_IF_ERROR(MakeDirs(dir));
  for (const OutputFile& f : files) {
    const std::string path = (std::filesystem::path(dir) / f.name).string();
    BF_RETURN_IF_ERROR(env->WriteFileAtomic(path, f.contents));
    summary->files.push_back({path, f.what});
  }
  return Status::OK();
}

void CountSkipped(const std::vector<SkippedRow>& skipped, ImportSummary* summary) {
  summary->skipped = skipped;
  summary->rows_skipped = static_cast<int64_t>(skipped.size());
  for (const SkippedRow& s : skipped) ++summary->skipped_by_reason[s.reason];
}

}  // namespace
}  // namespace breakfix::dataset

namespace breakfix {

Result<ImportSummary> ImportDataset(const ImportOptions& options, Env* env) {
  using namespace dataset;
  if (env == nullptr) env = Env::Default();
  BF_ASSIGN_OR_RETURN(ImportPlan plan, MakeImportPlan(options));
  if (plan.format == DatasetFormat::kHhRlhf) {
    return Status::InvalidArgument(
        "format hh-rlhf: its transcripts are parsed by the curate stage; expected ReadHhRlhf "
        "(breakfix/curate.h) followed by WriteConversationImport, as `breakfix import` does");
  }
  BF_ASSIGN_OR_RETURN(std::string text, ReadInputText(options.input, plan.encoding, env));
  std::unique_ptr<RowSource> source;
  if (plan.jsonl) {
    BF_ASSIGN_OR_RETURN(source, JsonlSource::Open(plan, options.input, std::move(text)));
  } else {
    BF_ASSIGN_OR_RETURN(source, CsvSource::Open(plan, options.input, std::move(text)));
  }

  ImportSummary summary;
  summary.input = options.input;
  summary.format = plan.format_name;
  summary.encoding = TextEncodingName(plan.encoding);
  summary.conversations = plan.conversations;
  summary.ignored_columns = source->IgnoredColumns();
  RecordBuilder builder(plan, options.input);
  std::vector<SkippedRow> skipped;
  std::string records;
  while (true) {
    if (options.limit > 0 && summary.rows_written >= options.limit) {
      summary.limit_reached = true;
      break;
    }
    RawRow row;
    RowProblem problem;
    BF_ASSIGN_OR_RETURN(ReadOutcome outcome, source->Next(&row, &problem));
    if (outcome == ReadOutcome::kEnd) break;
    ++summary.rows_read;
    if (outcome == ReadOutcome::kRow) {
      ordered_json record;
      if (builder.Build(row, summary.rows_read, &record, &problem)) {
        records += Dump(record);
        records += '\n';
        ++summary.rows_written;
        continue;
      }
    }
    if (!options.skip_bad_rows) {
      return Status::InvalidArgument(
          problem.message +
          "\nnothing was written; --skip-bad-rows skips such rows and imports the rest");
    }
    skipped.push_back({problem.line, problem.reason, problem.message});
  }
  CountSkipped(skipped, &summary);
  if (summary.rows_read != summary.rows_written + summary.rows_skipped) {
    return Status::Internal("import of " + options.input + ": rows read " +
                            std::to_string(summary.rows_read) + " != written " +
                            std::to_string(summary.rows_written) + " + skipped " +
                            std::to_string(summary.rows_skipped));
  }
  if (summary.rows_written == 0) {
    return Status::InvalidArgument(
        options.input + ": no rows to import (" + Plural(summary.rows_read, "row", "rows") +
        " read, " + std::to_string(summary.rows_skipped) + " skipped" +
        (skipped.empty() ? "" : "; the first: " + skipped.front().message) +
        "); expected at least one good row");
  }

  std::vector<OutputFile> files;
  if (plan.conversations) {
    files.push_back({"conversations.jsonl", std::move(records),
                     Plural(summary.rows_written, "conversation", "conversations")});
  } else {
    summary.suite_name = plan.suite_name;
    summary.rubric = plan.rubric;
    summary.categories = builder.Categories();
    files.push_back(
        {"items.jsonl", std::move(records), Plural(summary.rows_written, "item", "items")});
    files.push_back(
        {"suite.yaml", SuiteYaml(plan, options, summary, builder.ParamFields()),
         "suite " + plan.suite_name + ": family " + plan.family + ", rubric " + plan.rubric + ", " +
             Plural(static_cast<int64_t>(summary.categories.size()), "category", "categories")});
  }
  files.push_back(
      {"skipped.jsonl", SkippedJsonl(skipped), Plural(summary.rows_skipped, "row", "rows")});
  BF_RETURN_IF_ERROR(WriteOutputs(options.out_dir, files, env, &summary));
  return summary;
}

Result<ImportSummary> WriteConversationImport(const ImportOptions& options,
                                              const std::vector<ImportedConversation>& rows,
                                              const std::vector<SkippedRow>& skipped,
                                              int64_t rows_read, bool limit_reached, Env* env) {
  using namespace dataset;
  if (env == nullptr) env = Env::Default();
  BF_ASSIGN_OR_RETURN(ImportPlan plan, MakeImportPlan(options));
  ImportSummary summary;
  summary.input = options.input;
  summary.format = plan.format_name;
  summary.encoding = TextEncodingName(plan.encoding);
  summary.conversations = true;
  summary.limit_reached = limit_reached;
  summary.rows_read = rows_read;
  summary.rows_written = static_cast<int64_t>(rows.size());
  CountSkipped(skipped, &summary);
  if (summary.rows_read != summary.rows_written + summary.rows_skipped) {
    return Status::Internal("import of " + options.input + ": rows read " +
                            std::to_string(summary.rows_read) + " != written " +
                            std::to_string(summary.rows_written) + " + skipped " +
                            std::to_string(summary.rows_skipped));
  }
  if (rows.empty()) {
    return Status::InvalidArgument(
        options.input + ": no rows to import (" + Plural(rows_read, "row", "rows") + " read" +
        (skipped.empty() ? "" : "; the first skipped: " + skipped.front().message) +
        "); expected at least one good row");
  }
  std::string records;
  std::set<std::string> ids;
  for (const ImportedConversation& c : rows) {
    if (!ids.insert(c.id).second) {
      return Status::InvalidArgument(options.input + ": conversation id '" + c.id +
                                     "' given twice; expected unique ids");
    }
    ordered_json list = ordered_json::array();
    for (const Message& m : c.messages) {
      list.push_back({{"role", RoleName(m.role)}, {"content", m.content}});
    }
    ordered_json record = {{"id", c.id}, {"messages", std::move(list)}};
    for (const auto& [name, value] : c.fields) record[name] = value;
    records += Dump(record);
    records += '\n';
  }
  std::vector<OutputFile> files = {
      {"conversations.jsonl", std::move(records),
       Plural(summary.rows_written, "conversation", "conversations")},
      {"skipped.jsonl", SkippedJsonl(skipped), Plural(summary.rows_skipped, "row", "rows")}};
  BF_RETURN_IF_ERROR(WriteOutputs(options.out_dir, files, env, &summary));
  return summary;
}

std::string FormatImportSummary(const ImportSummary& s, int listed_lines) {
  using dataset::Plural;
  std::string out = "read " + Plural(s.rows_read, "row", "rows") + " from " + s.input + " (" +
                    s.format + ", " + s.encoding + "): " + std::to_string(s.rows_written) +
                    " written, " + std::to_string(s.rows_skipped) + " skipped\n";
  for (const auto& [reason, count] : s.skipped_by_reason) {
    std::vector<std::string> lines;
    int64_t more = 0;
    for (const SkippedRow& row : s.skipped) {
      if (row.reason != reason) continue;
      if (static_cast<int>(lines.size()) < listed_lines) {
        lines.push_back(std::to_string(row.line));
      } else {
        ++more;
      }
    }
    out += "  skipped " + Plural(count, "row", "rows") + " (" + reason + ") at " +
           (count == 1 ? "line " : "lines ") + JoinText(lines);
    if (more > 0) out += " and " + std::to_string(more) + " more (see skipped.jsonl)";
    out += "\n";
  }
  if (s.limit_reached) {
    out += "  stopped after " + Plural(s.rows_written, "record", "records") + " (the limit)\n";
  }
  if (!s.ignored_columns.empty()) {
    out += "  columns not imported: " + JoinText(s.ignored_columns) + "\n";
  }
  for (const ImportedFile& f : s.files) out += "wrote " + f.path + " (" + f.what + ")\n";
  return out;
}

}  // namespace breakfix
