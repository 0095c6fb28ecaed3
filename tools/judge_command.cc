// breakfix judge: train, validate, cross-validate and try out a classifier judge
// (breakfix/classifier_judge.h; docs/judges.md).
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "breakfix/classifier_judge.h"
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

int RunValidate(const JudgeFlags& f) {
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

  CLI::App* validate =
      cmd->add_subcommand("validate", "Agreement of a model with labelled turns it has not seen");
  validate->add_option("--model", flags->model, "Model file")->required();
  validate->add_option("--data", flags->data, "Labelled turns (JSONL)")->required()->expected(1);
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
