// breakfix judge: train, validate, cross-validate and try out a classifier judge
// (breakfix/classifier_judge.h), and validate any judge against human labels
// (breakfix/judge_validation.h; docs/judges.md).
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "breakfix/classifier_judge.h"
#include "breakfix/corrected_rate.h"
#include "breakfix/judge_validation.h"
#include "cli_common.h"

namespace breakfix::cli {
namespace {

using nlohmann::json;

struct JudgeFlags {
  std::vector<std::string> data;
  std::string out;
  std::string model;
  ClassifierTrainOptions train;  // defaults come from the struct
  ValidationOptions validation;
  int folds = 5;
  bool json = false;
  std::string rubric;
  std::string user;
  std::string assistant;
  // validate --labels: any judge (or verdict columns) against human labels
  std::string labels;
  std::string labels_format = "auto";
  std::vector<std::string> maps;  // FIELD=COLUMN
  std::string label_kind = "binary";
  std::string validate_rubric;
  std::string judge;
  std::string config;
  std::vector<std::string> verdicts;  // COL[,COL...], repeatable
  std::string validation_out;
  LabelFileOptions label_options;           // skip_bad_rows; the rest is filled from the flags
  JudgeValidationOptions judge_validation;  // defaults come from the struct
};

json RateJson(const RateWithInterval& r) {
  return {{"successes", r.successes}, {"n", r.n}, {"value", r.value}, {"ci", {r.lo, r.hi}}};
}

json ReportJson(const ValidationReport& report) {
  json rubrics = json::array();
  for (const RubricAgreement& a : report.rubrics) {
    rubrics.push_back({
        {"rubric", a.rubric},
        {"scale", ScaleName(a.scale)},
        {"n", a.n},
        {"unscorable", a.unscorable},
        {"exact", RateJson(a.exact)},
        {"within_one", RateJson(a.within_one)},
        {"quadratic_kappa", a.quadratic_kappa ? json(*a.quadratic_kappa) : json(nullptr)},
        {"confusion", a.confusion},
        {"defect",
         {{"threshold", a.threshold},
          {"true_positive", a.true_positive},
          {"false_positive", a.false_positive},
          {"false_negative", a.false_negative},
          {"true_negative", a.true_negative},
          {"precision", RateJson(a.precision)},
          {"recall", RateJson(a.recall)},
          {"f1", a.f1}}},
    });
  }
  return {{"model", report.model_identity}, {"rubrics", rubrics}};
}

std::string Rate(const RateWithInterval& r) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%.3f [%.3f, %.3f]  %lld/%lld", r.value, r.lo, r.hi,
                static_cast<long long>(r.successes), static_cast<long long>(r.n));
  return buf;
}

void PrintReport(const ValidationReport& report) {
  std::printf("model %s\n", report.model_identity.c_str());
  for (const RubricAgreement& a : report.rubrics) {
    std::printf("\n%s (%s scale): %lld turns scored, %lld unscorable\n", a.rubric.c_str(),
                ScaleName(a.scale), static_cast<long long>(a.n),
                static_cast<long long>(a.unscorable));
    if (a.unscorable > 0 && a.n == 0) {
      std::printf("  the model has no %s rubric\n", a.rubric.c_str());
      continue;
    }
    std::printf("  exact agreement     %s\n", Rate(a.exact).c_str());
    std::printf("  within one          %s\n", Rate(a.within_one).c_str());
    if (a.quadratic_kappa) {
      std::printf("  quadratic kappa     %.3f\n", *a.quadratic_kappa);
    } else {
      std::printf("  quadratic kappa     undefined (every score the same level)\n");
    }
    std::printf("  defect = score >= %d: TP %lld, FP %lld, FN %lld, TN %lld\n", a.threshold,
                static_cast<long long>(a.true_positive), static_cast<long long>(a.false_positive),
                static_cast<long long>(a.false_negative), static_cast<long long>(a.true_negative));
    std::printf("    precision         %s\n", Rate(a.precision).c_str());
    std::printf("    recall            %s\n", Rate(a.recall).c_str());
    std::printf("    F1                %.3f\n", a.f1);
    std::printf("  confusion (rows: true score, columns: predicted)\n       ");
    for (size_t p = 0; p < a.confusion.size(); ++p) std::printf("%6zu", p);
    std::printf("\n");
    for (size_t t = 0; t < a.confusion.size(); ++t) {
      std::printf("    %2zu ", t);
      for (int64_t c : a.confusion[t]) std::printf("%6lld", static_cast<long long>(c));
      std::printf("\n");
    }
  }
}

int RunTrain(const JudgeFlags& f) {
  auto summary = TrainClassifierJudge(f.data, f.train, f.out);
  if (!summary.ok()) return FailLookup(summary.status());
  std::printf("wrote %s (%s), data sha256 %s\n", f.out.c_str(), summary->identity.c_str(),
              summary->data_sha256.substr(0, 12).c_str());
  for (const auto& r : summary->rubrics) {
    std::string counts;
    for (size_t i = 0; i < r.labels.size(); ++i) {
      counts += (counts.empty() ? "" : ", ") + std::to_string(r.labels[i]) + ": " +
                std::to_string(r.label_counts[i]);
    }
    std::printf("  %-16s scores {%s}; training-set agreement %.3f\n", r.rubric.c_str(),
                counts.c_str(), r.training_accuracy);
  }
  std::printf(
      "training-set agreement is optimistic: measure with `breakfix judge validate` on held-out "
      "data or `breakfix judge cv`\n");
  return kExitOk;
}

int RunValidateLabels(JudgeFlags& f);

int RunValidate(JudgeFlags& f) {
  if (!f.labels.empty()) {
    if (!f.model.empty() || !f.data.empty()) {
      return Fail(Status::InvalidArgument(
          "validate: --labels (any judge against human labels) cannot be combined with --model "
          "and --data (a classifier model against labelled turns)"));
    }
    return RunValidateLabels(f);
  }
  if (f.model.empty() || f.data.empty()) {
    return Fail(Status::InvalidArgument(
        "validate: give --labels FILE with --judge SPEC or --verdicts COLUMNS (any judge against "
        "human labels), or --model MODEL.json with --data TURNS.jsonl (a classifier judge against "
        "labelled turns)"));
  }
  auto report = ValidateClassifierJudge(f.model, f.data[0], f.validation);
  if (!report.ok()) return FailLookup(report.status());
  if (f.json) {
    std::printf("%s\n", ReportJson(*report).dump().c_str());
  } else {
    PrintReport(*report);
  }
  return kExitOk;
}

int RunCrossValidate(const JudgeFlags& f) {
  auto report = CrossValidateClassifierJudge(f.data[0], f.folds, f.train, f.validation);
  if (!report.ok()) return FailLookup(report.status());
  if (f.json) {
    std::printf("%s\n", ReportJson(*report).dump().c_str());
  } else {
    PrintReport(*report);
  }
  return kExitOk;
}

int RunScore(const JudgeFlags& f) {
  auto judge = OpenClassifierJudge(f.model);
  if (!judge.ok()) return FailLookup(judge.status());
  auto p = (*judge)->PredictTurn(f.rubric, f.user, f.assistant);
  if (!p.ok()) return Fail(p.status());
  if (f.json) {
    json probs = json::object();
    for (size_t i = 0; i < p->labels.size(); ++i) {
      probs[std::to_string(p->labels[i])] = p->probabilities[i];
    }
    std::printf("%s\n", json{{"model", (*judge)->Identity()},
                             {"rubric", f.rubric},
                             {"score", p->score},
                             {"probabilities", probs}}
                            .dump(2)
                            .c_str());
    return kExitOk;
  }
  std::printf("score %d (rubric %s, %s)\n", p->score, f.rubric.c_str(),
              (*judge)->Identity().c_str());
  for (size_t i = 0; i < p->labels.size(); ++i) {
    std::printf("  P(score = %d) = %.4f\n", p->labels[i], p->probabilities[i]);
  }
  return kExitOk;
}

// --- validate --labels: any judge, or verdict columns, against human labels ---

json ProportionJson(const Proportion& p) {
  return {{"successes", p.successes},
          {"n", p.n},
          {"value", p.n > 0 ? json(p.value) : json(nullptr)},
          {"ci", {p.ci.lo, p.ci.hi}}};
}

json StatisticJson(const Statistic& s) {
  return {{"value", s.value ? json(*s.value) : json(nullptr)},
          {"ci", s.ci ? json({s.ci->lo, s.ci->hi}) : json(nullptr)},
          {"undefined_resamples", s.undefined_resamples}};
}

json GroupJson(const GroupAgreement& g) {
  const BinaryAgreement& b = g.binary;
  json out = {
      {"rows", g.rows},
      {"scored", g.rows - g.unscorable},
      {"unscorable", g.unscorable},
      {"unscorable_share", ProportionJson(g.unscorable_share)},
      {"scale", g.scale},
      {"threshold", g.threshold},
      {"binary",
       {{"tp", b.counts.tp},
        {"fp", b.counts.fp},
        {"fn", b.counts.fn},
        {"tn", b.counts.tn},
        {"confusion", BinaryMatrix(b.counts).rows()},
        {"accuracy", ProportionJson(b.accuracy)},
        {"precision", ProportionJson(b.precision)},
        {"recall", ProportionJson(b.recall)},
        {"specificity", ProportionJson(b.specificity)},
        {"f1", StatisticJson(b.f1)},
        {"kappa", StatisticJson(b.kappa)}}},
  };
  if (g.exact) {
    out["exact"] = {{"levels", g.exact->matrix.levels()},
                    {"confusion", g.exact->matrix.rows()},
                    {"accuracy", ProportionJson(g.exact->accuracy)},
                    {"kappa", StatisticJson(g.exact->kappa)},
                    {"quadratic_kappa", StatisticJson(g.exact->quadratic_kappa)}};
  } else {
    out["exact"] = nullptr;
  }
  return out;
}

json LabelReportJson(const JudgeValidationReport& report, const AgreementOptions& agreement) {
  json skipped = json::array();
  for (const SkippedLabelRow& s : report.skipped) {
    skipped.push_back({{"where", s.where}, {"reason", s.reason}});
  }
  json raters = json::array();
  for (const RaterAgreement& r : report.raters) {
    json rubrics = json::object(), categories = json::object();
    for (const auto& [id, g] : r.rubrics) rubrics[id] = GroupJson(g);
    for (const auto& [id, g] : r.categories) categories[id] = GroupJson(g);
    raters.push_back({{"rater", r.rater},
                      {"overall", GroupJson(r.overall)},
                      {"rubrics", rubrics},
                      {"categories", categories}});
  }
  return {{"labels",
           {{"file", report.labels_path},
            {"sha256", report.labels_sha256},
            {"label_kind", LabelKindName(report.kind)},
            {"rows", report.rows},
            {"skipped_rows", report.skipped.size()},
            {"skipped", skipped}}},
          {"threshold", report.threshold},
          {"bootstrap", {{"resamples", agreement.bootstrap}, {"seed", agreement.seed}}},
          {"raters", raters}};
}

std::string ShowProportion(const Proportion& p, const char* undefined) {
  if (p.n == 0) return undefined;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.3f [%.3f, %.3f]", p.value, p.ci.lo, p.ci.hi);
  return buf;
}

std::string ShowStatistic(const Statistic& s, const char* undefined) {
  if (!s.value) return undefined;
  char buf[64];
  if (s.ci) {
    std::snprintf(buf, sizeof(buf), "%.3f [%.3f, %.3f]", *s.value, s.ci->lo, s.ci->hi);
  } else {
    std::snprintf(buf, sizeof(buf), "%.3f", *s.value);
  }
  return buf;
}

std::string ShowCount(int64_t n) { return std::to_string(n); }

// Prints rows of (metric, one cell per rater) as aligned columns.
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size(), 0);
  auto widen = [&](const std::vector<std::string>& row) {
    for (size_t c = 0; c < row.size() && c < width.size(); ++c) {
      width[c] = std::max(width[c], row[c].size());
    }
  };
  widen(header);
  for (const auto& row : rows) widen(row);
  auto print = [&](const std::vector<std::string>& row) {
    std::string line = " ";
    for (size_t c = 0; c < row.size(); ++c) {
      line += " " + row[c] + std::string(width[c] - row[c].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  };
  print(header);
  for (const auto& row : rows) print(row);
}

void PrintMatrix(const std::vector<std::vector<int64_t>>& m,
                 const std::vector<std::string>& names) {
  size_t w = 6;
  for (const std::string& n : names) w = std::max(w, n.size() + 2);
  for (const auto& row : m) {
    for (int64_t c : row) w = std::max(w, std::to_string(c).size() + 2);
  }
  std::printf("    %*s", static_cast<int>(w), "");
  for (const std::string& n : names) std::printf("%*s", static_cast<int>(w), n.c_str());
  std::printf("\n");
  for (size_t t = 0; t < m.size(); ++t) {
    std::printf("    %*s", static_cast<int>(w), names[t].c_str());
    for (int64_t c : m[t]) std::printf("%*lld", static_cast<int>(w), static_cast<long long>(c));
    std::printf("\n");
  }
}

std::vector<std::string> LevelNames(LabelKind kind, int levels) {
  if (kind == LabelKind::kThreeWay) return {"comply", "partial", "refuse"};
  std::vector<std::string> names;
  for (int i = 0; i < levels; ++i) names.push_back(std::to_string(i));
  return names;
}

// The metric rows of one group for each rater, side by side.
std::vector<std::vector<std::string>> GroupRows(const std::vector<const GroupAgreement*>& groups,
                                                LabelKind kind) {
  std::vector<std::vector<std::string>> rows;
  auto row = [&](const std::string& name, auto cell) {
    std::vector<std::string> r = {name};
    for (const GroupAgreement* g : groups) r.push_back(g == nullptr ? "-" : cell(*g));
    rows.push_back(std::move(r));
  };
  row("rows", [](const GroupAgreement& g) { return ShowCount(g.rows); });
  row("unscorable", [](const GroupAgreement& g) {
    return ShowCount(g.unscorable) + " = " + ShowProportion(g.unscorable_share, "-");
  });
  row("scored", [](const GroupAgreement& g) { return ShowCount(g.rows - g.unscorable); });
  row("verdict scale", [](const GroupAgreement& g) {
    return g.scale + (g.scale == "none" ? "" : ", defect >= " + std::to_string(g.threshold));
  });
  row("TP FP FN TN", [](const GroupAgreement& g) {
    const BinaryCounts& c = g.binary.counts;
    return ShowCount(c.tp) + " " + ShowCount(c.fp) + " " + ShowCount(c.fn) + " " + ShowCount(c.tn);
  });
  row("accuracy", [](const GroupAgreement& g) {
    return ShowProportion(g.binary.accuracy, "undefined (nothing scored)");
  });
  row("precision", [](const GroupAgreement& g) {
    return ShowProportion(g.binary.precision, "undefined (no judged defect)");
  });
  row("recall", [](const GroupAgreement& g) {
    return ShowProportion(g.binary.recall, "undefined (no labelled defect)");
  });
  row("specificity", [](const GroupAgreement& g) {
    return ShowProportion(g.binary.specificity, "undefined (no labelled non-defect)");
  });
  row("F1", [](const GroupAgreement& g) {
    return ShowStatistic(g.binary.f1, "undefined (no defect at all)");
  });
  row("kappa", [](const GroupAgreement& g) {
    return ShowStatistic(g.binary.kappa, "undefined (one class only)");
  });
  if (kind != LabelKind::kBinary) {
    row("exact accuracy", [](const GroupAgreement& g) {
      return g.exact ? ShowProportion(g.exact->accuracy, "undefined (nothing scored)")
                     : std::string("n/a (verdicts on another scale)");
    });
    row("exact kappa", [](const GroupAgreement& g) {
      return g.exact ? ShowStatistic(g.exact->kappa, "undefined (one level only)")
                     : std::string("n/a");
    });
    row("quadratic kappa", [](const GroupAgreement& g) {
      return g.exact ? ShowStatistic(g.exact->quadratic_kappa, "undefined (one level only)")
                     : std::string("n/a");
    });
  }
  return rows;
}

// Rubric or category breakdown: one compact line per (group, rater).
void PrintBreakdown(const char* what, const JudgeValidationReport& report,
                    std::map<std::string, GroupAgreement> RaterAgreement::*member) {
  std::set<std::string> names;
  for (const RaterAgreement& r : report.raters) {
    for (const auto& [name, g] : r.*member) names.insert(name);
  }
  if (names.size() < 2) return;
  std::printf("\nby %s\n", what);
  std::vector<std::vector<std::string>> rows;
  for (const std::string& name : names) {
    for (const RaterAgreement& r : report.raters) {
      auto it = (r.*member).find(name);
      if (it == (r.*member).end()) continue;
      const GroupAgreement& g = it->second;
      rows.push_back({name, r.rater, ShowCount(g.rows - g.unscorable), ShowCount(g.unscorable),
                      ShowProportion(g.binary.accuracy, "-"), ShowStatistic(g.binary.f1, "-"),
                      ShowStatistic(g.binary.kappa, "-")});
    }
  }
  PrintTable({what, "rater", "scored", "unscorable", "accuracy", "F1", "kappa"}, rows);
}

void PrintLabelReport(const JudgeValidationReport& report) {
  std::printf("labels %s (sha256 %s): %lld rows, %s labels, defect threshold %d\n",
              report.labels_path.c_str(), report.labels_sha256.substr(0, 12).c_str(),
              static_cast<long long>(report.rows), LabelKindName(report.kind), report.threshold);
  if (!report.skipped.empty()) {
    std::printf("skipped %zu bad rows:\n", report.skipped.size());
    const size_t shown = std::min<size_t>(report.skipped.size(), 10);
    for (size_t i = 0; i < shown; ++i) std::printf("  %s\n", report.skipped[i].reason.c_str());
    if (shown < report.skipped.size()) {
      std::printf("  ... and %zu more (--json lists them all)\n", report.skipped.size() - shown);
    }
  }
  std::printf("\n");
  std::vector<std::string> header = {"overall"};
  std::vector<const GroupAgreement*> groups;
  for (const RaterAgreement& r : report.raters) {
    header.push_back(r.rater);
    groups.push_back(&r.overall);
  }
  PrintTable(header, GroupRows(groups, report.kind));
  std::printf(
      "\n(proportions with 95%% Wilson intervals; F1 and kappa with 95%% bootstrap "
      "intervals; unscorable rows are left out of the agreement numbers)\n");

  for (const RaterAgreement& r : report.raters) {
    const BinaryCounts& c = r.overall.binary.counts;
    std::printf("\n%s: confusion (rows: human label, columns: judge)\n", r.rater.c_str());
    PrintMatrix(BinaryMatrix(c).rows(), {"no defect", "defect"});
    if (r.overall.exact) {
      const ConfusionMatrix& m = r.overall.exact->matrix;
      std::printf("  exact levels\n");
      PrintMatrix(m.rows(), LevelNames(report.kind, m.levels()));
    }
  }
  PrintBreakdown("rubric", report, &RaterAgreement::rubrics);
  PrintBreakdown("category", report, &RaterAgreement::categories);
}

int RunValidateLabels(JudgeFlags& f) {
  Env* env = Env::Default();
  const bool with_judge = !f.judge.empty();
  std::vector<std::string> columns;
  for (const std::string& v : f.verdicts) {
    for (const std::string& c : SplitList(v)) columns.push_back(c);
  }
  if (with_judge == !columns.empty()) {
    return Fail(Status::InvalidArgument(
        "validate --labels: give either --judge SPEC (run a judge over the labelled rows) or "
        "--verdicts COLUMN[,COLUMN...] (compare verdicts already in the file), not " +
        std::string(with_judge ? "both" : "neither")));
  }
  LabelFileOptions& lo = f.label_options;
  auto kind = ParseLabelKind(f.label_kind);
  if (!kind.ok()) return Fail(kind.status().WithContext("--label-kind"));
  lo.kind = *kind;
  auto format = ParseLabelFileFormat(f.labels_format);
  if (!format.ok()) return Fail(format.status().WithContext("--labels-format"));
  lo.format = *format;
  for (const std::string& m : f.maps) {
    const size_t eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size()) {
      return Fail(Status::InvalidArgument("--map " + m + ": expected FIELD=COLUMN"));
    }
    if (!lo.columns.emplace(m.substr(0, eq), m.substr(eq + 1)).second) {
      return Fail(Status::InvalidArgument("--map " + m + ": field \"" + m.substr(0, eq) +
                                          "\" is mapped twice"));
    }
  }
  lo.rubric = f.validate_rubric;
  lo.verdict_columns = columns;
  lo.need_conversation = with_judge;

  JudgeValidationOptions& vo = f.judge_validation;
  vo.threshold = f.validation.threshold;

  // The judge first: a bad spec is reported before the labels are read.
  std::unique_ptr<ModelSet> models;
  Judge* judge = nullptr;
  if (with_judge) {
    auto table = LoadModelTable(f.config, env);
    if (!table.ok()) return Fail(table.status());
    auto set = ModelSet::Create(env);
    if (!set.ok()) return Fail(set.status());
    models = std::move(set).value();
    auto j = models->AddJudge(f.judge, *table);
    if (!j.ok()) return FailLookup(j.status().WithContext("--judge"));
    judge = *j;
  }

  auto labels = ReadLabelFile(f.labels, lo);
  if (!labels.ok()) return FailLookup(labels.status());
  auto report = with_judge ? ValidateJudge(judge, *labels, vo) : CompareVerdictColumns(*labels, vo);
  if (models) models->CancelAll();
  if (!report.ok()) return Fail(report.status());

  if (!f.validation_out.empty()) {
    Status s = WriteJudgeValidation(f.validation_out, ToJudgeValidation(*report));
    if (!s.ok()) return Fail(s.WithContext("--out"));
  }
  if (f.json) {
    std::printf("%s\n", LabelReportJson(*report, vo.agreement).dump().c_str());
  } else {
    PrintLabelReport(*report);
    if (!f.validation_out.empty()) std::printf("\nwrote %s\n", f.validation_out.c_str());
  }
  return kExitOk;
}

void AddTrainingFlags(CLI::App* cmd, JudgeFlags* f) {
  cmd->add_option("--epochs", f->train.epochs, "Passes over the training data")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--learning-rate", f->train.learning_rate, "Adagrad base step")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--l2", f->train.l2, "L2 penalty per weight")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--seed", f->train.seed, "Seed of the example order (and of the folds)")
      ->capture_default_str();
  cmd->add_option("--hash-bits", f->train.features.hash_bits,
                  "Features are hashed into 2^N buckets")
      ->check(CLI::Range(10, 26))
      ->capture_default_str();
}

void AddValidationFlags(CLI::App* cmd, JudgeFlags* f) {
  cmd->add_option("--threshold", f->validation.threshold,
                  "A score >= N counts as a defect in the precision/recall lines")
      ->check(CLI::Range(1, 7))
      ->capture_default_str();
  cmd->add_flag("--json", f->json, "Print the report as JSON");
}

}  // namespace

CommandFn AddJudgeCommand(CLI::App& app) {
  auto flags = std::make_shared<JudgeFlags>();
  CLI::App* cmd = app.add_subcommand(
      "judge", "Train, validate and try a classifier judge from labelled turns (JSONL)");
  cmd->require_subcommand(1);

  CLI::App* train = cmd->add_subcommand("train", "Train a classifier judge and write its model");
  train->add_option("--data", flags->data, "Labelled turns (JSONL); repeat for several files")
      ->required();
  train->add_option("--out", flags->out, "Model file to write (JSON)")->required();
  AddTrainingFlags(train, flags.get());

  CLI::App* validate = cmd->add_subcommand(
      "validate",
      "Agreement of a judge with human labels (--labels), or of a classifier model with labelled "
      "turns it has not seen (--model, --data)");
  validate->add_option("--model", flags->model, "Classifier model file (with --data)");
  validate->add_option("--data", flags->data, "Labelled turns (JSONL) for --model")->expected(1);
  validate->add_option("--labels", flags->labels, "Human-labelled file, CSV or JSONL");
  validate
      ->add_option("--labels-format", flags->labels_format,
                   "csv or jsonl (default: from the file name)")
      ->check(CLI::IsMember({"auto", "csv", "jsonl"}));
  validate->add_option("--map", flags->maps,
                       "FIELD=COLUMN: where a field is (fields: id, prompt, response, messages, "
                       "label, rubric, category); repeatable");
  validate
      ->add_option("--label-kind", flags->label_kind,
                   "binary, three-way (refusal scale) or severity (0..7)")
      ->capture_default_str();
  validate->add_option("--rubric", flags->validate_rubric,
                       "Rubric of rows without a rubric column (default jailbreak; refusal for "
                       "three-way labels)");
  validate->add_option(
      "--judge", flags->judge,
      "Judge to run: model name or spec (LLM judge), \"refusal\", or \"classifier:MODEL.json\"");
  validate->add_option("--config", flags->config,
                       "YAML file whose `models:` map names models for --judge");
  validate->add_option("--verdicts", flags->verdicts,
                       "Columns that already hold judge verdicts, compared side by side instead "
                       "of running a judge (COL[,COL...]; repeatable)");
  validate->add_option("--out", flags->validation_out,
                       "Also write the judge validation file (JSON) for corrected rates");
  validate->add_flag("--skip-bad-rows", flags->label_options.skip_bad_rows,
                     "Skip and count rows with unreadable labels instead of failing");
  validate
      ->add_option("--bootstrap", flags->judge_validation.agreement.bootstrap,
                   "Bootstrap resamples for the F1 and kappa intervals (0: none)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  validate->add_option("--seed", flags->judge_validation.agreement.seed, "Seed of the bootstrap")
      ->capture_default_str();
  validate
      ->add_option("--max-in-flight", flags->judge_validation.max_in_flight,
                   "Judge calls in progress at once")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  AddValidationFlags(validate, flags.get());

  CLI::App* cv = cmd->add_subcommand("cv", "k-fold cross-validation on one labelled file");
  cv->add_option("--data", flags->data, "Labelled turns (JSONL)")->required()->expected(1);
  cv->add_option("--folds", flags->folds, "Number of folds")
      ->check(CLI::Range(2, 20))
      ->capture_default_str();
  AddTrainingFlags(cv, flags.get());
  AddValidationFlags(cv, flags.get());

  CLI::App* score = cmd->add_subcommand("score", "Score one reply with a model");
  score->add_option("--model", flags->model, "Model file")->required();
  score->add_option("--rubric", flags->rubric, "Rubric id")->required();
  score->add_option("--user", flags->user, "The user message before the reply");
  score->add_option("--assistant", flags->assistant, "The reply to score")->required();
  score->add_flag("--json", flags->json, "Print the result as JSON");

  return [flags, train, validate, cv, score]() -> int {
    if (train->parsed()) return RunTrain(*flags);
    if (validate->parsed()) return RunValidate(*flags);
    if (cv->parsed()) return RunCrossValidate(*flags);
    if (score->parsed()) return RunScore(*flags);
    return kExitUsage;
  };
}

}  // namespace breakfix::cli
