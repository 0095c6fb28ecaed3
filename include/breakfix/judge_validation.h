// Validating a judge against human labels.
//
// A labelled file (CSV or JSON Lines) holds conversations with a human verdict each. Any Judge
// (LLM, refusal-prefix, classifier) is run over the rows, or the verdicts of other judges already
// in the file are read from named columns, and the verdicts are compared with the labels
// (breakfix/agreement.h): accuracy, precision, recall, specificity, F1 and Cohen's kappa with
// intervals, and the confusion matrix. Rows the judge could not score are counted as their own
// outcome and left out of the agreement numbers. The binary confusion counts can be saved as a
// judge validation file (breakfix/corrected_rate.h), from which judge-corrected defect rates are
// computed. docs/judges.md ("Validating a judge against human labels") is the user's guide.
#ifndef BREAKFIX_JUDGE_VALIDATION_H_
#define BREAKFIX_JUDGE_VALIDATION_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "breakfix/agreement.h"
#include "breakfix/chat_model.h"
#include "breakfix/corrected_rate.h"
#include "breakfix/judge.h"
#include "breakfix/status.h"

namespace breakfix {

// What a label (or a verdict column's cell) says.
enum class LabelKind {
  kBinary,    // 1 = defect, 0 = not a defect
  kThreeWay,  // the refusal scale: 0 = full compliance, 1 = partial refusal, 2 = full refusal
  kSeverity,  // harm severity 0..7
};
const char* LabelKindName(LabelKind kind);  // "binary", "three-way", "severity"
// Accepts the names above; the error lists them.
Result<LabelKind> ParseLabelKind(const std::string& name);
// The scale whose scores a label of this kind can be compared with exactly: kBinary, kRefusal,
// kSeverity.
Scale LabelKindScale(LabelKind kind);

// Parses one label or verdict cell, ignoring case and surrounding white space. Binary:
//   defect (1):     1, 1.0, true, yes, unsafe, harmful, jailbroken
//   not a defect (0): 0, 0.0, false, no, safe, unharmful, harmless, not_harmful, not_jailbroken
//   and "refused" / "complied", whose meaning depends on the rubric: on a rubric with the refusal
//   scale the defect measured is refusing, so refused = 1 and complied = 0; on every other rubric
//   the defect is going along with a harmful request, so complied = 1 and refused = 0 (as the
//   refusal-prefix judge's binary scale: 0 = refused, 1 = complied).
// Three-way: full_compliance (0), partial_refusal (1), full_refusal (2), also written with spaces
//   or hyphens, and XSTest's numbered spellings 1_full_compliance (0), 2_full_refusal (2),
//   3_partial_refusal (1). Bare digits are rejected: XSTest numbers the classes 1..3 in another
//   order than the refusal scale's 0..2, so "1" or "2" would be ambiguous.
// Severity: an integer 0..7.
// The error says what was found and lists the accepted values (AcceptedLabelValues).
Result<int> ParseLabelValue(LabelKind kind, const std::string& text, Scale rubric_scale);
std::string AcceptedLabelValues(LabelKind kind);

enum class LabelFileFormat { kAuto, kCsv, kJsonl };
// "csv", "jsonl" (or "auto").
Result<LabelFileFormat> ParseLabelFileFormat(const std::string& name);

// The fields of a labelled row, each read from the column (CSV) or key (JSONL, where a dotted
// path reaches into nested objects) of the same name unless mapped otherwise.
//   id        optional, the row's own name
//   prompt    the user message
//   response  the assistant reply being judged
//   messages  the whole conversation instead: a JSON array of {"role", "content"} objects (in CSV,
//             a cell holding that JSON text); used when present and non-empty
//   label     required, the human verdict (see ParseLabelValue)
//   rubric    optional, a built-in rubric id per row
//   category  optional, reported as its own breakdown
inline constexpr const char* kLabelFields[] = {"id",    "prompt", "response", "messages",
                                               "label", "rubric", "category"};

struct LabelFileOptions {
  LabelFileFormat format = LabelFileFormat::kAuto;  // kAuto: .csv is CSV, .jsonl/.ndjson JSONL
  std::map<std::string, std::string> columns;       // field -> column or key; unmapped fields use
                                                    // their own name and are optional where noted
  LabelKind kind = LabelKind::kBinary;              // how to read labels and verdict cells
  std::string rubric;  // rubric of rows without a rubric column; "" = "refusal" for three-way
                       // labels, "jailbreak" otherwise
  std::vector<std::string> verdict_columns;  // columns holding other judges' verdicts
  bool need_conversation = true;  // rows must carry a response or messages (a judge will run)
  bool skip_bad_rows = false;     // skip and count rows with bad values instead of failing
};

// One labelled row, ready to judge.
struct LabelledRow {
  std::string where;                  // "file:line" of the row
  std::string id;                     // "" when the file has no id
  std::string rubric;                 // a built-in rubric id
  std::string category;               // "" when the file has none
  std::vector<Message> conversation;  // empty when need_conversation is false and none was given
  int label = 0;                      // binary 0/1 (1 = defect), three-way 0..2, severity 0..7
  // One per verdict column: the verdict on the label's kind, or nullopt for an empty cell (the
  // judge could not score the row).
  std::vector<std::optional<int>> verdicts;
};

struct SkippedLabelRow {
  std::string where;   // "file:line" (and column for CSV)
  std::string reason;  // what was wrong
};

struct LabelFile {
  std::string path;
  std::string sha256;  // of the file's bytes
  LabelKind kind = LabelKind::kBinary;
  std::vector<std::string> verdict_columns;
  std::vector<LabelledRow> rows;
  std::vector<SkippedLabelRow> skipped;  // only with skip_bad_rows
};

// Reads a labelled file. Errors are InvalidArgument naming file:line (and column for CSV), the
// field, the value found and what was expected: an unparseable label or verdict, an unknown
// rubric, a `messages` value that is not an array of {role, content}, a row without anything to
// judge, a mapped column the file lacks, a malformed line. With skip_bad_rows, row-level errors
// are collected in `skipped` instead (CSV structure errors still fail: after one, the rows that
// follow cannot be trusted). A file without any usable row is an error.
Result<LabelFile> ReadLabelFile(const std::string& path, const LabelFileOptions& options);

struct JudgeValidationOptions {
  // The binary view: a score >= threshold is a defect, for labels and verdicts alike. A binary
  // label is already 0/1, and a judge on the binary scale (the refusal-prefix judge on harm
  // rubrics) is compared at 1 whatever this says. On the refusal scale, a score >= 1 means "refused
  // at least partially".
  int threshold = 1;
  int max_in_flight = 8;       // judge calls in progress at once
  AgreementOptions agreement;  // bootstrap resamples and seed for the F1 and kappa intervals
};

// One rater's agreement with the labels on a group of rows.
struct GroupAgreement {
  int64_t rows = 0;             // rows in the group
  int64_t unscorable = 0;       // rows the rater could not score; left out of the numbers below
  Proportion unscorable_share;  // unscorable / rows, with a Wilson interval
  std::string scale;            // the scale of the rater's verdicts here ("mixed" if several)
  int threshold = 1;            // the threshold applied to the verdicts (1 on the binary scale)
  BinaryAgreement binary;       // over scored rows
  // The exact-level comparison: three-way and severity labels, when the verdicts are on the
  // labels' scale (a binary judge against severity labels has only the binary view).
  std::optional<ExactAgreement> exact;
};

// One rater: a judge, or one verdict column.
struct RaterAgreement {
  std::string rater;  // the judge's Identity(), or "column:<name>"
  GroupAgreement overall;
  std::map<std::string, GroupAgreement> rubrics;     // by rubric id
  std::map<std::string, GroupAgreement> categories;  // by category, rows that name one
};

struct JudgeValidationReport {
  std::string labels_path;
  std::string labels_sha256;
  LabelKind kind = LabelKind::kBinary;
  int threshold = 1;
  int64_t rows = 0;  // rows compared
  std::vector<SkippedLabelRow> skipped;
  std::vector<RaterAgreement> raters;  // one judge, or one per verdict column in order
};

// Runs `judge` on every row and compares its verdicts with the labels. The judge is called from
// this thread with at most options.max_in_flight annotations outstanding; the call returns when
// all have answered. Errors: a judge call that failed (its status, prefixed with the row's
// file:line), an annotation on a scale the labels cannot be compared with (three-way labels need
// the refusal scale; severity labels the severity or the binary scale) or on which the threshold
// cannot be reached (InvalidArgument naming the row and both scales).
Result<JudgeValidationReport> ValidateJudge(Judge* judge, const LabelFile& labels,
                                            const JudgeValidationOptions& options);

// Compares the verdict columns read with the file (LabelFileOptions::verdict_columns) with the
// labels, one rater per column, without running any judge.
Result<JudgeValidationReport> CompareVerdictColumns(const LabelFile& labels,
                                                    const JudgeValidationOptions& options);

// The judge validation file's content for this report (binary counts per rater and rubric).
JudgeValidation ToJudgeValidation(const JudgeValidationReport& report);

}  // namespace breakfix

#endif  // BREAKFIX_JUDGE_VALIDATION_H_
