// Running a judge (or reading verdict columns) over labelled rows and measuring its agreement
// with the labels, overall, per rubric and per category.
#include "breakfix/judge_validation.h"

#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace breakfix {
namespace {

// One rater's verdict on one row.
struct Verdict {
  bool scored = false;
  Scale scale = Scale::kBinary;
  int score = 0;
};

std::string ScaleList(const std::set<Scale>& scales) {
  if (scales.empty()) return "none";
  if (scales.size() > 1) return "mixed";
  return ScaleName(*scales.begin());
}

// The threshold applied to verdicts on `scale`: the binary scale has only 0 and 1.
int VerdictThreshold(Scale scale, int threshold) { return scale == Scale::kBinary ? 1 : threshold; }

bool LabelIsDefect(LabelKind kind, int label, int threshold) {
  return kind == LabelKind::kBinary ? label == 1 : label >= threshold;
}

GroupAgreement Summarize(const LabelFile& labels, const std::vector<Verdict>& verdicts,
                         const std::vector<size_t>& members,
                         const JudgeValidationOptions& options) {
  GroupAgreement g;
  g.rows = static_cast<int64_t>(members.size());
  const Scale label_scale = LabelKindScale(labels.kind);
  const bool exact_possible = labels.kind != LabelKind::kBinary;
  bool exact_ok = exact_possible;
  std::set<Scale> scales;
  BinaryCounts counts;
  ConfusionMatrix exact(ScaleMax(label_scale) + 1);
  for (size_t i : members) {
    const Verdict& v = verdicts[i];
    if (!v.scored) {
      ++g.unscorable;
      continue;
    }
    scales.insert(v.scale);
    const int label = labels.rows[i].label;
    const bool truth = LabelIsDefect(labels.kind, label, options.threshold);
    const bool judged = v.score >= VerdictThreshold(v.scale, options.threshold);
    if (truth && judged) ++counts.tp;
    if (!truth && judged) ++counts.fp;
    if (truth && !judged) ++counts.fn;
    if (!truth && !judged) ++counts.tn;
    if (v.scale == label_scale) {
      exact.Add(label, v.score);
    } else {
      exact_ok = false;
    }
  }
  g.unscorable_share = MakeProportion(g.unscorable, g.rows);
  g.scale = ScaleList(scales);
  g.threshold = (scales.size() == 1 && *scales.begin() == Scale::kBinary) ? 1 : options.threshold;
  g.binary = ComputeBinaryAgreement(counts, options.agreement);
  if (exact_ok) g.exact = ComputeExactAgreement(exact, options.agreement);
  return g;
}

RaterAgreement Rate(const std::string& rater, const LabelFile& labels,
                    const std::vector<Verdict>& verdicts, const JudgeValidationOptions& options) {
  RaterAgreement r;
  r.rater = rater;
  std::vector<size_t> all;
  std::map<std::string, std::vector<size_t>> by_rubric, by_category;
  for (size_t i = 0; i < labels.rows.size(); ++i) {
    all.push_back(i);
    by_rubric[labels.rows[i].rubric].push_back(i);
    if (!labels.rows[i].category.empty()) by_category[labels.rows[i].category].push_back(i);
  }
  r.overall = Summarize(labels, verdicts, all, options);
  for (const auto& [rubric, members] : by_rubric) {
    r.rubrics[rubric] = Summarize(labels, verdicts, members, options);
  }
  for (const auto& [category, members] : by_category) {
    r.categories[category] = Summarize(labels, verdicts, members, options);
  }
  return r;
}

Status CheckOptions(const LabelFile& labels, const JudgeValidationOptions& options) {
  const int top = ScaleMax(LabelKindScale(labels.kind));
  if (labels.kind != LabelKind::kBinary && (options.threshold < 1 || options.threshold > top)) {
    return Status::InvalidArgument("--threshold " + std::to_string(options.threshold) + ": " +
                                   LabelKindName(labels.kind) + " labels go up to " +
                                   std::to_string(top) + ", expected a threshold 1.." +
                                   std::to_string(top));
  }
  if (options.threshold < 1) {
    return Status::InvalidArgument("--threshold " + std::to_string(options.threshold) +
                                   ": expected at least 1");
  }
  if (options.max_in_flight < 1) {
    return Status::InvalidArgument("max_in_flight " + std::to_string(options.max_in_flight) +
                                   ": expected at least 1");
  }
  if (options.agreement.bootstrap < 0) {
    return Status::InvalidArgument("--bootstrap " + std::to_string(options.agreement.bootstrap) +
                                   ": expected 0 or more resamples");
  }
  return Status::OK();
}

// Whether a verdict on `scale` can be compared with the labels; the error names the row.
Status CheckVerdictScale(const LabelFile& labels, const LabelledRow& row, const Verdict& v,
                         int threshold) {
  if (!v.scored) return Status::OK();
  if (v.score < 0 || v.score > ScaleMax(v.scale)) {
    return Status::InvalidArgument(row.where + ": the judge scored " + std::to_string(v.score) +
                                   ", outside its " + ScaleName(v.scale) + " scale 0.." +
                                   std::to_string(ScaleMax(v.scale)));
  }
  const std::string on = std::string("the judge annotated rubric ") + row.rubric + " on the " +
                         ScaleName(v.scale) + " scale";
  switch (labels.kind) {
    case LabelKind::kThreeWay:
      if (v.scale != Scale::kRefusal) {
        return Status::InvalidArgument(
            row.where + ": " + on +
            "; three-way labels need a judge that answers on the refusal scale (0 = full "
            "compliance, 1 = partial refusal, 2 = full refusal), as judges do for rubric refusal");
      }
      break;
    case LabelKind::kSeverity:
      if (v.scale != Scale::kSeverity && v.scale != Scale::kBinary) {
        return Status::InvalidArgument(row.where + ": " + on +
                                       "; severity labels can be compared with severity scores "
                                       "(exactly) or binary verdicts (as defect or not)");
      }
      break;
    case LabelKind::kBinary:
      break;
  }
  if (VerdictThreshold(v.scale, threshold) > ScaleMax(v.scale)) {
    return Status::InvalidArgument(row.where + ": " + on + ", whose top score is " +
                                   std::to_string(ScaleMax(v.scale)) +
                                   ": no verdict could reach "
                                   "--threshold " +
                                   std::to_string(threshold));
  }
  return Status::OK();
}

JudgeValidationReport NewReport(const LabelFile& labels, const JudgeValidationOptions& options) {
  JudgeValidationReport report;
  report.labels_path = labels.path;
  report.labels_sha256 = labels.sha256;
  report.kind = labels.kind;
  report.threshold = options.threshold;
  report.rows = static_cast<int64_t>(labels.rows.size());
  report.skipped = labels.skipped;
  return report;
}

}  // namespace

Result<JudgeValidationReport> ValidateJudge(Judge* judge, const LabelFile& labels,
                                            const JudgeValidationOptions& options) {
  BF_RETURN_IF_ERROR(CheckOptions(labels, options));
  const size_t n = labels.rows.size();
  std::vector<Verdict> verdicts(n);

  std::mutex mu;
  std::condition_variable changed;
  int in_flight = 0;
  Status first_error;
  size_t error_row = 0;
  for (size_t i = 0; i < n; ++i) {
    {
      std::unique_lock<std::mutex> lock(mu);
      changed.wait(lock, [&] { return in_flight < options.max_in_flight || !first_error.ok(); });
      if (!first_error.ok()) break;
      ++in_flight;
    }
    const LabelledRow& row = labels.rows[i];
    JudgeInput input;
    input.rubric = row.rubric;
    input.category = row.category;
    input.conversation = row.conversation;
    judge->Annotate(std::move(input), [&, i](Result<Annotation> result) {
      std::lock_guard<std::mutex> lock(mu);
      if (!result.ok()) {
        if (first_error.ok()) {
          first_error = result.status();
          error_row = i;
        }
      } else {
        verdicts[i].scored = result->outcome == Outcome::kScored;
        verdicts[i].scale = result->scale;
        verdicts[i].score = result->score;
      }
      --in_flight;
      changed.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    changed.wait(lock, [&] { return in_flight == 0; });
  }
  if (!first_error.ok()) {
    return Status(first_error.code(), labels.rows[error_row].where + ": judge " + judge->name() +
                                          ": " + first_error.message());
  }
  for (size_t i = 0; i < n; ++i) {
    BF_RETURN_IF_ERROR(CheckVerdictScale(labels, labels.rows[i], verdicts[i], options.threshold));
  }
  JudgeValidationReport report = NewReport(labels, options);
  report.raters.push_back(Rate(judge->Identity(), labels, verdicts, options));
  return report;
}

Result<JudgeValidationReport> CompareVerdictColumns(const LabelFile& labels,
                                                    const JudgeValidationOptions& options) {
  BF_RETURN_IF_ERROR(CheckOptions(labels, options));
  if (labels.verdict_columns.empty()) {
    return Status::InvalidArgument(labels.path +
                                   ": no verdict columns were read; name them with --verdicts");
  }
  JudgeValidationReport report = NewReport(labels, options);
  const Scale scale = LabelKindScale(labels.kind);
  for (size_t c = 0; c < labels.verdict_columns.size(); ++c) {
    std::vector<Verdict> verdicts(labels.rows.size());
    for (size_t i = 0; i < labels.rows.size(); ++i) {
      const LabelledRow& row = labels.rows[i];
      if (c >= row.verdicts.size()) {
        return Status::Internal(row.where + ": the row holds " +
                                std::to_string(row.verdicts.size()) + " verdicts, expected " +
                                std::to_string(labels.verdict_columns.size()));
      }
      if (!row.verdicts[c]) continue;  // an empty cell: unscorable
      verdicts[i] = Verdict{true, scale, *row.verdicts[c]};
    }
    report.raters.push_back(Rate("column:" + labels.verdict_columns[c], labels, verdicts, options));
  }
  return report;
}

JudgeValidation ToJudgeValidation(const JudgeValidationReport& report) {
  JudgeValidation v;
  v.labels_file = report.labels_path;
  v.labels_sha256 = report.labels_sha256;
  v.label_kind = LabelKindName(report.kind);
  v.rows = report.rows;
  v.skipped_rows = static_cast<int64_t>(report.skipped.size());
  for (const RaterAgreement& r : report.raters) {
    ValidatedJudge j;
    j.judge = r.rater;
    j.threshold = report.threshold;
    j.overall = r.overall.binary.counts;
    j.overall_unscorable = r.overall.unscorable;
    for (const auto& [rubric, g] : r.rubrics) {
      RubricValidation rv;
      rv.scale = g.scale;
      rv.threshold = g.threshold;
      rv.counts = g.binary.counts;
      rv.unscorable = g.unscorable;
      j.rubrics[rubric] = rv;
    }
    v.judges.push_back(std::move(j));
  }
  return v;
}

}  // namespace breakfix
