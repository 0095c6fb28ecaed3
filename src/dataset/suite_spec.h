// The parsed, validated form of a suite file: what the loader builds and the item cursor walks.
// Everything here is immutable once LoadSuite() returns, so one SuiteSpec is shared (through a
// shared_ptr) by the Suite and all of its cursors, from any number of threads.
#ifndef BREAKFIX_DATASET_SUITE_SPEC_H_
#define BREAKFIX_DATASET_SUITE_SPEC_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "breakfix/suite.h"
#include "dataset/grid_index.h"
#include "dataset/location.h"
#include "dataset/template_text.h"

namespace breakfix::dataset {

// Rubric ids the judge knows; a family's `rubric:` must be one of these or "category".
inline constexpr const char* kSeverityRubrics[] = {"hate_unfairness", "sexual",      "violence",
                                                   "self_harm",       "third_party", "jailbreak"};
inline constexpr const char* kUngroundednessRubric = "ungroundedness";
// The three-way refusal rubric (0 full compliance, 1 partial refusal, 2 full refusal).
inline constexpr const char* kRefusalRubric = "refusal";
inline constexpr const char* kCategoryRubric = "category";

// Who the simulated user is when a multi-turn template gives no persona.
inline constexpr const char* kDefaultPersona =
    "An ordinary member of the public using a general-purpose chat assistant.";

struct DocumentSpec {
  std::string id;
  std::string text;
  Location where;
};

struct TemplateSpec {
  std::string name;
  Location where;
  TemplateText system;   // empty: no system prompt
  TemplateText user;     // empty: the simulator writes the first turn (multi-turn only)
  TemplateText goal;     // required for multi-turn families
  TemplateText persona;  // empty: kDefaultPersona for multi-turn families
};

// A named parameter and its values: one value for an explicit item, a grid axis otherwise.
struct ParamSpec {
  std::string name;
  std::vector<std::string> values;
  Location where;
};

// One item written out under `items:`.
struct ExplicitItemSpec {
  std::string id;  // empty: generated from the item's position
  Location where;
  Location id_where;
  int template_index = 0;
  std::string category;
  int document = -1;  // index into SuiteSpec::documents, or -1
  std::vector<std::pair<std::string, std::string>> params;
};

// A cross product under `grids:`. Axes in order: category, document (when given), then params
// in the order written; the last axis varies fastest.
struct GridSpec {
  Location where;
  int template_index = 0;
  std::vector<std::string> categories;
  std::vector<int> documents;  // indices into SuiteSpec::documents; empty: no document axis
  std::vector<ParamSpec> params;
  std::vector<int64_t> radices;
  int64_t combinations = 0;
  int64_t sample = 0;  // 0: every combination, in order; else that many, permuted
  IndexPermutation permutation;

  int64_t count() const { return sample > 0 ? sample : combinations; }
};

enum class ImportFormat { kCsv, kJsonl };

// What an import column feeds.
enum class ImportTarget {
  kId,            // the item's id
  kCategory,      // the item's category
  kDocument,      // a document id from the suite's `documents:`
  kDocumentText,  // the document's text itself
  kParam,         // a template parameter named `param`
};

struct ColumnSpec {
  ImportTarget target = ImportTarget::kParam;
  std::string param;   // the parameter's name (kParam) or the target's key in `columns:`
  std::string source;  // CSV column name or JSONL key / dotted path
  Location where;
};

// One file under `import:`.
struct ImportSpec {
  Location where;
  std::string file;  // as written in the suite
  std::string path;  // resolved against the suite's directory
  ImportFormat format = ImportFormat::kCsv;
  int template_index = 0;
  std::vector<ColumnSpec> columns;
  std::string default_category;  // for rows without a category value; empty: none
  int64_t limit = -1;            // -1: no limit
  int64_t rows = 0;              // items this import yields (counted at load, limit applied)
  std::string sha256;            // hex digest of the whole file at load time

  bool maps(ImportTarget target) const {
    for (const auto& c : columns) {
      if (c.target == target) return true;
    }
    return false;
  }
};

struct FamilySpec {
  Family family;
  Location where;
  std::vector<TemplateSpec> templates;
  std::vector<ExplicitItemSpec> items;
  std::vector<GridSpec> grids;
  std::vector<ImportSpec> imports;
  int64_t item_count = 0;
};

struct SuiteSpec {
  std::string name;
  std::string description;
  std::string file_name;  // as shown in errors
  std::string base_dir;   // imports resolve against this
  uint64_t sample_seed = 0;
  std::vector<DocumentSpec> documents;
  std::vector<FamilySpec> families;
  std::vector<Family> public_families;  // families[i].family, for Suite::families()
  int64_t item_count = 0;
  std::string content_hash;
};

// An item's values before rendering: what one explicit item, grid combination or import row
// binds.
struct ItemBinding {
  std::string id;     // explicit id, or empty for a generated one
  Location id_where;  // where an explicit id came from (imports)
  std::string category;
  int document = -1;  // index into SuiteSpec::documents, or -1
  bool has_inline_document = false;
  std::string inline_document;  // imports' document_text
  std::vector<std::pair<std::string, std::string>> params;
};

// "family/template/0042": the id of the item at `ordinal` (0-based position within its family)
// when no id was given. At least four digits.
std::string GeneratedItemId(const std::string& family, const std::string& template_name,
                            int64_t ordinal);

// Renders `binding` through `tmpl` into a complete SeedItem.
void RenderItem(const SuiteSpec& suite, const FamilySpec& family, const TemplateSpec& tmpl,
                const ItemBinding& binding, int64_t ordinal, SeedItem* item);

// Checks a category against the family's whitelist and, for rubric "category", the rubric list.
Status CheckCategory(const FamilySpec& family, const std::string& category, const Location& where);

bool IsSeverityRubric(const std::string& id);

}  // namespace breakfix::dataset

#endif  // BREAKFIX_DATASET_SUITE_SPEC_H_
