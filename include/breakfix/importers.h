// Dataset importers: public safety datasets (HarmBench, AdvBench, JailbreakBench, XSTest,
// Do-Not-Answer, SimpleSafetyTests, Anthropic HH-RLHF) and generic CSV/JSONL files become
// normalised JSONL records plus, for prompt datasets, a ready-to-run suite. docs/import.md has
// every format's column mapping, and `breakfix import` is the command that drives this.
//
// An import reads the whole input before it writes anything. A bad row (a wrong field count, a
// missing value, invalid UTF-8, an unparseable JSON line, an unknown label) either stops the
// import with an error naming the file and line and leaves the output directory untouched, or,
// with `skip_bad_rows`, is counted and listed; rows read always equal rows written plus rows
// skipped. Every output file is written atomically. The functions here are thread-compatible:
// concurrent imports need distinct output directories.
#ifndef BREAKFIX_IMPORTERS_H_
#define BREAKFIX_IMPORTERS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "breakfix/chat_model.h"
#include "breakfix/env.h"
#include "breakfix/status.h"

namespace breakfix {

enum class DatasetFormat {
  kHarmBench,    // HarmBench behaviours CSV
  kAdvBench,     // AdvBench harmful_behaviors.csv (goal, target)
  kJbb,          // JailbreakBench JBB-Behaviors CSV (harmful or benign)
  kXsTest,       // XSTest v2 prompts CSV (safe and unsafe contrast prompts)
  kDoNotAnswer,  // Do-Not-Answer do_not_answer_en.csv
  kSst,          // SimpleSafetyTests CSV
  kHhRlhf,       // Anthropic HH-RLHF JSONL, plain or gzipped (see WriteConversationImport)
  kCsv,          // any CSV, mapped with ImportOptions::mappings
  kJsonl,        // any JSONL, mapped with ImportOptions::mappings
};

// "harmbench", "advbench", "jbb", "xstest", "donotanswer", "sst", "hh-rlhf", "csv", "jsonl".
const char* DatasetFormatName(DatasetFormat format);
// Every format name, in the order above.
const std::vector<std::string>& DatasetFormatNames();
// The format of that name; InvalidArgument listing the names otherwise.
Result<DatasetFormat> ParseDatasetFormat(const std::string& name);

struct ImportOptions {
  DatasetFormat format = DatasetFormat::kCsv;  // how to read `input`
  std::string input;                           // the file to import
  std::string out_dir;                         // where the outputs go (created when missing)
  std::string encoding = "utf-8";              // utf-8 (BOM or not), latin1, cp1252, macroman
  std::vector<std::string> mappings;           // csv/jsonl only: "FIELD=COLUMN" (FIELD: id, prompt,
                                      // response, messages, category, label, or an extra name)
  bool skip_bad_rows = false;  // skip, count and list bad rows instead of failing on the first
  int64_t limit = 0;           // stop once this many records are written; 0 = no limit
  std::string suite_name;      // suite.yaml's name and family; "" = from the format or file name
  std::string rubric;          // the suite family's rubric; "" = the format's (jailbreak, or
                               // refusal for xstest)
};

// Why a row was skipped (keys of ImportSummary::skipped_by_reason and `reason` in skipped.jsonl).
inline constexpr char kSkipInvalidUtf8[] = "invalid_utf8";      // not UTF-8 (or not the encoding)
inline constexpr char kSkipColumnCount[] = "column_count";      // CSV: fields != header columns
inline constexpr char kSkipBadCsv[] = "bad_csv";                // CSV: quoting that cannot parse
inline constexpr char kSkipBadJson[] = "bad_json";              // JSONL: not one JSON object
inline constexpr char kSkipMissingValue[] = "missing_value";    // a required value empty/absent
inline constexpr char kSkipUnknownLabel[] = "unknown_label";    // a label outside the format's set
inline constexpr char kSkipBadMessages[] = "bad_messages";      // not a list of {role, content}
inline constexpr char kSkipDuplicateId[] = "duplicate_id";      // an id seen on an earlier row
inline constexpr char kSkipMalformedPair[] = "malformed_pair";  // HH-RLHF: transcripts that do
                                                                // not form a preference pair

// One row that was not imported.
struct SkippedRow {
  int64_t line = 0;     // 1-based line where the row starts
  std::string reason;   // a kSkip* value
  std::string message;  // "file:line[:column]: what was found; expected what"
};

// One written file.
struct ImportedFile {
  std::string path;
  std::string what;  // "450 items", "suite xstest (family xstest, rubric refusal)"
};

struct ImportSummary {
  std::string input;         // the file read
  std::string format;        // its format's name
  std::string encoding;      // the canonical encoding name
  int64_t rows_read = 0;     // data rows taken from the input (stops early at `limit`)
  int64_t rows_written = 0;  // records written
  int64_t rows_skipped = 0;  // rows_read - rows_written
  std::map<std::string, int64_t> skipped_by_reason;
  std::vector<SkippedRow> skipped;           // every skipped row, in file order
  std::vector<std::string> ignored_columns;  // header columns the format does not use
  bool limit_reached = false;                // reading stopped at ImportOptions::limit
  bool conversations = false;                // conversations.jsonl (else items.jsonl + suite)
  std::string suite_name;                    // prompt datasets: the suite written
  std::string rubric;                        // prompt datasets: its family's rubric
  std::vector<std::string> categories;       // prompt datasets: sorted, distinct
  std::vector<ImportedFile> files;           // in the order written
};

// Imports options.input into options.out_dir: items.jsonl + suite.yaml for prompt datasets,
// conversations.jsonl for conversation-shaped input (csv/jsonl mapped to messages, or to prompt
// and response), and skipped.jsonl (one {"line","reason","message"} per skipped row, empty when
// none) in both cases. Errors: InvalidArgument for bad options and bad input (nothing is
// written), NotFound when the input cannot be opened, IOError when an output cannot be written.
// Reads the input and writes the outputs through `env` (null = Env::Default()).
// kHhRlhf is not handled here: its transcripts are parsed by the curate stage (ReadHhRlhf in
// breakfix/curate.h); pass the result to WriteConversationImport, as `breakfix import` does.
Result<ImportSummary> ImportDataset(const ImportOptions& options, Env* env);

// Checks the options without reading anything: the format/encoding/mapping combination, the
// --map syntax and field names, the rubric and the limit.
Status ValidateImportOptions(const ImportOptions& options);

// A conversation that another stage parsed (HH-RLHF pairs read by ReadHhRlhf).
struct ImportedConversation {
  std::string id;
  std::vector<Message> messages;
  std::vector<std::pair<std::string, std::string>> fields;  // extra fields, written in order
};

// Writes conversations.jsonl and skipped.jsonl for conversations read elsewhere, with the same
// layout, checks (at least one conversation, rows_read = written + skipped) and atomic writes as
// ImportDataset. `rows_read` counts every data row of the source. The caller adds any further
// files (such as pairs.jsonl) to the summary it gets back.
Result<ImportSummary> WriteConversationImport(const ImportOptions& options,
                                              const std::vector<ImportedConversation>& rows,
                                              const std::vector<SkippedRow>& skipped,
                                              int64_t rows_read, bool limit_reached, Env* env);

// The summary as printed by `breakfix import`: rows read, written and skipped, the skip reasons
// with up to `listed_lines` line numbers each, ignored columns, and the files written.
std::string FormatImportSummary(const ImportSummary& summary, int listed_lines = 5);

}  // namespace breakfix

#endif  // BREAKFIX_IMPORTERS_H_
