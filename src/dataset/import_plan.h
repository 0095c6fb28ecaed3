// ImportPlan: what `breakfix import` does with one input, decided from ImportOptions before any
// byte is read. A named format (harmbench, xstest, ...) is a fixed table of source columns and
// the record fields they become; csv and jsonl build the same table from the user's --map
// entries. The reader in importers.cc only follows the plan, so adding a format is adding a
// table here (and its row in docs/import.md).
#ifndef BREAKFIX_DATASET_IMPORT_PLAN_H_
#define BREAKFIX_DATASET_IMPORT_PLAN_H_

#include <string>
#include <string_view>
#include <vector>

#include "breakfix/importers.h"
#include "breakfix/status.h"
#include "dataset/encoding.h"

namespace breakfix::dataset {

// What a record field holds; each role but kExtra appears at most once in a plan.
enum class FieldRole { kId, kPrompt, kResponse, kMessages, kCategory, kLabel, kExtra };

struct FieldRule {
  std::string field;  // the record key ("id", "prompt", or the extra's name)
  FieldRole role = FieldRole::kExtra;
  std::vector<std::string> sources;  // CSV header names accepted (the first present is used), or
                                     // the JSONL key / dotted path
  bool required_column = true;       // the header must have one of `sources`
  bool required_value = false;       // every row needs a non-blank value
  std::string origin;                // csv/jsonl: the --map entry, for error messages
};

struct ImportPlan {
  DatasetFormat format = DatasetFormat::kCsv;
  std::string format_name;  // "harmbench"
  std::string title;        // "HarmBench": the suite family's title
  TextEncoding encoding = TextEncoding::kUtf8;
  bool jsonl = false;          // the input is JSONL (else CSV)
  bool user_mapped = false;    // fields come from --map (csv, jsonl)
  bool conversations = false;  // records are conversations (else prompts with a suite)
  std::vector<FieldRule> fields;
  std::string documented_header;    // named formats: the expected header, for error messages
  std::string numeric_id_prefix;    // named formats: put before an id made only of digits
  std::string generated_id_prefix;  // no id field: each id is this + the row's ordinal (1-based)
  std::string default_category;     // no category field: every record's category
  std::string raw_category_field;   // when set, the category column's text as found is kept
                                    // under this field (the category itself is sanitised)
  std::vector<std::string> labels;  // the accepted label values; empty = any
  bool context_input = false;       // harmbench: derive "input" from the context and the prompt
  std::string rubric;               // the suite family's rubric
  int threshold = 1;                // and its DR-x threshold
  std::string suite_name;           // the suite's name
  std::string family;               // the family's name: [a-z0-9_]+
};

// Checks `options` and builds its plan. InvalidArgument names the option that is wrong.
Result<ImportPlan> MakeImportPlan(const ImportOptions& options);

// A category as suites and reports want it: ASCII letters lower-cased, letters and digits kept,
// every other run of characters (spaces, punctuation, non-ASCII) becomes one '_', and leading
// and trailing '_' are dropped. "Harassment/Discrimination" -> "harassment_discrimination".
// Text with no letter or digit becomes "uncategorized".
std::string SanitizeCategory(std::string_view text);

// The record fields that cannot be named by an extra mapping: the core fields, the names a suite
// reserves for itself, and the fields the importer derives.
bool IsReservedFieldName(const std::string& name);

}  // namespace breakfix::dataset

#endif  // BREAKFIX_DATASET_IMPORT_PLAN_H_
