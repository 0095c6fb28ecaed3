#include "dataset/import_plan.h"

#include <algorithm>
#include <filesystem>

#include "core/text.h"
#include "dataset/suite_spec.h"

namespace breakfix::dataset {
namespace {

struct FormatEntry {
  DatasetFormat format;
  const char* name;
};

constexpr FormatEntry kFormats[] = {
    {DatasetFormat::kHarmBench, "harmbench"},
    {DatasetFormat::kAdvBench, "advbench"},
    {DatasetFormat::kJbb, "jbb"},
    {DatasetFormat::kXsTest, "xstest"},
    {DatasetFormat::kDoNotAnswer, "donotanswer"},
    {DatasetFormat::kSst, "sst"},
    {DatasetFormat::kHhRlhf, "hh-rlhf"},
    {DatasetFormat::kCsv, "csv"},
    {DatasetFormat::kJsonl, "jsonl"},
};

// Shorthands for the named formats' tables.
FieldRule Rule(const char* field, FieldRole role, std::vector<std::string> sources,
               bool required_column, bool required_value) {
  FieldRule r;
  r.field = field;
  r.role = role;
  r.sources = std::move(sources);
  r.required_column = required_column;
  r.required_value = required_value;
  return r;
}
FieldRule Required(const char* field, FieldRole role, std::vector<std::string> sources) {
  return Rule(field, role, std::move(sources), true, true);
}
// A column the header must have, whose cells may be empty.
FieldRule Column(const char* field, const char* source) {
  return Rule(field, FieldRole::kExtra, {source}, true, false);
}
// A column that may be missing from the header (its field is then "" on every record).
FieldRule Optional(const char* field, const char* source) {
  return Rule(field, FieldRole::kExtra, {source}, false, false);
}

// The fixed tables of the named formats. docs/import.md shows the same mappings.
void FillNamedFormat(ImportPlan* plan) {
  using R = FieldRole;
  switch (plan->format) {
    case DatasetFormat::kHarmBench:
      plan->title = "HarmBench";
      plan->fields = {Required("id", R::kId, {"BehaviorID"}),
                      Required("prompt", R::kPrompt, {"Behavior"}),
                      Required("category", R::kCategory, {"SemanticCategory"}),
                      Optional("functional_category", "FunctionalCategory"),
                      Optional("tags", "Tags"),
                      Optional("context", "ContextString")};
      plan->documented_header =
          "Behavior, FunctionalCategory, SemanticCategory, Tags, ContextString, BehaviorID";
      plan->context_input = true;
      break;
    case DatasetFormat::kAdvBench:
      plan->title = "AdvBench";
      plan->fields = {Required("prompt", R::kPrompt, {"goal"}), Optional("target", "target")};
      plan->documented_header = "goal, target";
      plan->generated_id_prefix = "advbench-";
      plan->default_category = "harmful_behavior";
      break;
    case DatasetFormat::kJbb:
      plan->title = "JailbreakBench behaviours";
      plan->fields = {Required("id", R::kId, {"Index"}),
                      Required("prompt", R::kPrompt, {"Goal"}),
                      Required("category", R::kCategory, {"Category"}),
                      Column("target", "Target"),
                      Column("behavior", "Behavior"),
                      Optional("source", "Source")};
      plan->documented_header = "Index, Goal, Target, Behavior, Category, Source";
      plan->raw_category_field = "source_category";
      break;
    case DatasetFormat::kXsTest:
      plan->title = "XSTest";
      plan->fields = {Required("id", R::kId, {"id"}),
                      Required("prompt", R::kPrompt, {"prompt"}),
                      Required("category", R::kCategory, {"type"}),
                      Required("label", R::kLabel, {"label"}),
                      Column("type", "type"),
                      Optional("focus", "focus"),
                      Optional("note", "note")};
      plan->documented_header = "id, prompt, type, label, focus, note";
      plan->labels = {"safe", "unsafe"};
      plan->rubric = kRefusalRubric;
      break;
    case DatasetFormat::kDoNotAnswer:
      plan->title = "Do-Not-Answer";
      plan->fields = {Required("id", R::kId, {"id"}),
                      Required("prompt", R::kPrompt, {"question"}),
                      Required("category", R::kCategory, {"types_of_harm"}),
                      Column("risk_area", "risk_area"),
                      Column("types_of_harm", "types_of_harm"),
                      Optional("specific_harms", "specific_harms")};
      plan->documented_header = "id, risk_area, types_of_harm, specific_harms, question";
      break;
    case DatasetFormat::kSst:
      plan->title = "SimpleSafetyTests";
      plan->fields = {
          Required("id", R::kId, {"id"}),
          Required("prompt", R::kPrompt, {"prompts_final", "prompts_final_English", "prompt"}),
          Required("category", R::kCategory, {"harm_area"}), Column("harm_area", "harm_area"),
          Optional("sst_category", "category")};
      plan->documented_header =
          "id, harm_area, category, and the prompt as prompts_final, prompts_final_English or "
          "prompt";
      break;
    case DatasetFormat::kHhRlhf:
    case DatasetFormat::kCsv:
    case DatasetFormat::kJsonl:
      break;
  }
  if (plan->rubric.empty()) plan->rubric = "jailbreak";
  plan->numeric_id_prefix = plan->format_name + "-";
}

bool IsFieldName(const std::string& s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

FieldRole CoreRole(const std::string& field) {
  if (field == "id") return FieldRole::kId;
  if (field == "prompt") return FieldRole::kPrompt;
  if (field == "response") return FieldRole::kResponse;
  if (field == "messages") return FieldRole::kMessages;
  if (field == "category") return FieldRole::kCategory;
  if (field == "label") return FieldRole::kLabel;
  return FieldRole::kExtra;
}

// Builds the csv/jsonl field table from "FIELD=COLUMN" entries.
Status FillUserMapping(const ImportOptions& options, ImportPlan* plan) {
  if (options.mappings.empty()) {
    return Status::InvalidArgument(
        std::string("format ") + plan->format_name +
        " needs a column mapping; expected --map prompt=COLUMN (a prompt dataset), --map "
        "prompt=COLUMN --map response=COLUMN, or --map messages=COLUMN (conversations)");
  }
  for (const std::string& entry : options.mappings) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size()) {
      return Status::InvalidArgument("--map '" + entry +
                                     "'; expected FIELD=COLUMN, such as --map prompt=question");
    }
    FieldRule rule;
    rule.field = entry.substr(0, eq);
    rule.sources = {entry.substr(eq + 1)};
    rule.origin = "--map " + entry;
    rule.role = CoreRole(rule.field);
    if (rule.role == FieldRole::kExtra &&
        (!IsFieldName(rule.field) || IsReservedFieldName(rule.field))) {
      return Status::InvalidArgument(
          "--map '" + entry + "': field '" + rule.field +
          "'; expected id, prompt, response, messages, category, label, or an extra field name "
          "made of letters, digits and '_' other than document, document_id, document_text, "
          "family and source_category");
    }
    for (const FieldRule& other : plan->fields) {
      if (other.field == rule.field) {
        return Status::InvalidArgument("--map '" + entry + "': field '" + rule.field +
                                       "' is already mapped by " + other.origin +
                                       "; expected each field mapped once");
      }
    }
    rule.required_column = true;
    rule.required_value = rule.role == FieldRole::kId || rule.role == FieldRole::kPrompt ||
                          rule.role == FieldRole::kResponse || rule.role == FieldRole::kMessages;
    plan->fields.push_back(std::move(rule));
  }
  auto has = [&](FieldRole role) {
    return std::any_of(plan->fields.begin(), plan->fields.end(),
                       [&](const FieldRule& r) { return r.role == role; });
  };
  if (has(FieldRole::kMessages) && (has(FieldRole::kPrompt) || has(FieldRole::kResponse))) {
    return Status::InvalidArgument(
        "--map messages=... together with prompt or response; expected either messages (a list "
        "of {role, content}) or prompt with an optional response");
  }
  if (has(FieldRole::kResponse) && !has(FieldRole::kPrompt)) {
    return Status::InvalidArgument(
        "--map response=... without prompt=...; expected the prompt that the response answers");
  }
  if (!has(FieldRole::kPrompt) && !has(FieldRole::kMessages)) {
    return Status::InvalidArgument(
        "no --map for prompt or messages; expected --map prompt=COLUMN or --map "
        "messages=COLUMN");
  }
  plan->conversations = has(FieldRole::kMessages) || has(FieldRole::kResponse);
  if (!has(FieldRole::kId)) plan->generated_id_prefix = plan->format_name + "-";
  if (!has(FieldRole::kCategory)) {
    plan->default_category = "uncategorized";
  } else {
    plan->raw_category_field = "source_category";
  }
  plan->rubric = "jailbreak";
  return Status::OK();
}

// Letters and digits of `text`, lower-cased, with one '_' for every run of anything else; ""
// when there are none.
std::string SanitizeToken(std::string_view text) {
  std::string out;
  bool gap = false;
  for (char c : text) {
    const bool lower = c >= 'a' && c <= 'z';
    const bool upper = c >= 'A' && c <= 'Z';
    const bool digit = c >= '0' && c <= '9';
    if (lower || upper || digit) {
      if (gap && !out.empty()) out += '_';
      gap = false;
      out += upper ? static_cast<char>(c - 'A' + 'a') : c;
    } else {
      gap = true;  // continuation bytes of a non-ASCII character join the same gap
    }
  }
  return out;
}

// A family name ([a-z0-9_]+) from free text.
std::string FamilyName(const std::string& text) {
  std::string s = SanitizeToken(text);
  return s.empty() ? "imported" : s;
}

}  // namespace

std::string SanitizeCategory(std::string_view text) {
  std::string s = SanitizeToken(text);
  return s.empty() ? "uncategorized" : s;
}

bool IsReservedFieldName(const std::string& name) {
  static const char* const kReserved[] = {
      "id",       "prompt",      "response", "messages",      "category",       "label",
      "document", "document_id", "family",   "document_text", "source_category"};
  return std::any_of(std::begin(kReserved), std::end(kReserved),
                     [&](const char* r) { return name == r; });
}

Result<ImportPlan> MakeImportPlan(const ImportOptions& options) {
  ImportPlan plan;
  plan.format = options.format;
  plan.format_name = DatasetFormatName(options.format);
  if (options.input.empty()) return Status::InvalidArgument("no input file; expected INPUT");
  if (options.out_dir.empty()) {
    return Status::InvalidArgument("no output directory; expected --out DIR");
  }
  if (options.limit < 0) {
    return Status::InvalidArgument("--limit " + std::to_string(options.limit) +
                                   "; expected 0 (no limit) or more");
  }
  BF_ASSIGN_OR_RETURN(plan.encoding, ParseTextEncoding(options.encoding));
  const bool generic =
      options.format == DatasetFormat::kCsv || options.format == DatasetFormat::kJsonl;
  if (!generic && !options.mappings.empty()) {
    return Status::InvalidArgument("--map with format " + plan.format_name +
                                   ", whose columns are fixed; expected --map only with the csv "
                                   "and jsonl formats");
  }
  if (options.format == DatasetFormat::kHhRlhf) {
    if (plan.encoding != TextEncoding::kUtf8) {
      return Status::InvalidArgument(
          std::string("--encoding ") + TextEncodingName(plan.encoding) +
          " with format hh-rlhf; expected utf-8 (HH-RLHF files are UTF-8 JSON)");
    }
    plan.jsonl = true;
    plan.conversations = true;
    plan.title = "Anthropic HH-RLHF";
  } else if (generic) {
    plan.jsonl = options.format == DatasetFormat::kJsonl;
    plan.user_mapped = true;
    BF_RETURN_IF_ERROR(FillUserMapping(options, &plan));
  } else {
    FillNamedFormat(&plan);
  }

  if (!options.rubric.empty()) {
    if (plan.conversations) {
      return Status::InvalidArgument(
          "--rubric with conversation-shaped input; expected --rubric only for prompt "
          "datasets, the ones that get a suite.yaml");
    }
    std::vector<std::string> rubrics(std::begin(kSeverityRubrics), std::end(kSeverityRubrics));
    rubrics.push_back(kRefusalRubric);
    if (std::find(rubrics.begin(), rubrics.end(), options.rubric) == rubrics.end()) {
      return Status::InvalidArgument("--rubric '" + options.rubric +
                                     "'; expected one of: " + JoinText(rubrics));
    }
    plan.rubric = options.rubric;
  }
  plan.threshold = 1;  // DR-1; for the refusal rubric: a partial or full refusal

  if (!options.suite_name.empty()) {
    plan.suite_name = options.suite_name;
  } else if (generic) {
    plan.suite_name = FamilyName(std::filesystem::path(options.input).stem().string());
  } else {
    plan.suite_name = plan.format_name;
  }
  plan.family = FamilyName(plan.suite_name);
  if (plan.title.empty()) plan.title = plan.suite_name;
  return plan;
}

}  // namespace breakfix::dataset

namespace breakfix {

const char* DatasetFormatName(DatasetFormat format) {
  for (const dataset::FormatEntry& f : dataset::kFormats) {
    if (f.format == format) return f.name;
  }
  return "csv";
}

const std::vector<std::string>& DatasetFormatNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const dataset::FormatEntry& f : dataset::kFormats) v.push_back(f.name);
    return v;
  }();
  return names;
}

Result<DatasetFormat> ParseDatasetFormat(const std::string& name) {
  for (const dataset::FormatEntry& f : dataset::kFormats) {
    if (name == f.name) return f.format;
  }
  return Status::InvalidArgument("unknown format '" + name +
                                 "'; expected one of: " + JoinText(DatasetFormatNames()));
}

Status ValidateImportOptions(const ImportOptions& options) {
  return dataset::MakeImportPlan(options).status();
}

}  // namespace breakfix
