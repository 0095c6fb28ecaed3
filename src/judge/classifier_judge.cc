// The classifier judge: labelled-data reading, training to a model file, the Judge on a loaded
// model, and validation (agreement with held-out labels, k-fold cross-validation).
#include "breakfix/classifier_judge.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "breakfix/env.h"
#include "breakfix/hash.h"
#include "breakfix/interval.h"
#include "judge/classifier_features.h"
#include "judge/classifier_model.h"

namespace breakfix {
namespace {

using classifier::ClassifierModel;
using classifier::RubricModel;
using nlohmann::json;

constexpr char kJudgeName[] = "classifier";

std::string RubricIdList() {
  std::string out;
  for (const Rubric& r : AllRubrics()) {
    if (!out.empty()) out += ", ";
    out += r.id;
  }
  return out;
}

std::string JsonType(const json& v) { return v.type_name(); }

Result<std::vector<LabelledTurn>> ParseLabelledTurns(const std::string& text,
                                                     const std::string& path) {
  std::vector<LabelledTurn> turns;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      return Status::InvalidArgument(where + ": not valid JSON: " + e.what());
    }
    if (!j.is_object()) {
      return Status::InvalidArgument(where + ": the line is " + JsonType(j) +
                                     ", expected an object {\"rubric\", \"user\", \"assistant\", "
                                     "\"score\"}");
    }
    for (const auto& [key, value] : j.items()) {
      if (key != "id" && key != "rubric" && key != "user" && key != "assistant" && key != "score") {
        return Status::InvalidArgument(where + ": unknown field '" + key +
                                       "' (expected id, rubric, user, assistant, score)");
      }
    }
    LabelledTurn t;
    t.where = where;
    for (const char* key : {"rubric", "user", "assistant"}) {
      auto it = j.find(key);
      if (it == j.end()) {
        return Status::InvalidArgument(where + ": field '" + key + "' is missing");
      }
      if (!it->is_string()) {
        return Status::InvalidArgument(where + ": field '" + key + "' is " + JsonType(*it) +
                                       ", expected a string");
      }
    }
    t.rubric = j["rubric"].get<std::string>();
    t.user = j["user"].get<std::string>();
    t.assistant = j["assistant"].get<std::string>();
    const Rubric* rubric = FindRubric(t.rubric);
    if (rubric == nullptr) {
      return Status::InvalidArgument(where + ": field 'rubric' is \"" + t.rubric +
                                     "\", expected one of " + RubricIdList());
    }
    const std::string scale = std::string("an integer 0..") +
                              std::to_string(ScaleMax(rubric->scale)) + " (rubric " + t.rubric +
                              " uses the " + ScaleName(rubric->scale) + " scale)";
    auto score = j.find("score");
    if (score == j.end()) return Status::InvalidArgument(where + ": field 'score' is missing");
    if (!score->is_number_integer()) {
      return Status::InvalidArgument(where + ": field 'score' is " + score->dump() + ", expected " +
                                     scale);
    }
    const int64_t s = score->get<int64_t>();
    if (s < 0 || s > ScaleMax(rubric->scale)) {  // a huge unsigned value reads as negative
      return Status::InvalidArgument(where + ": field 'score' is " + score->dump() + ", expected " +
                                     scale);
    }
    t.score = static_cast<int>(s);
    if (auto id = j.find("id"); id != j.end()) {
      if (id->is_string()) {
        t.id = id->get<std::string>();
      } else if (id->is_number_integer()) {
        t.id = id->dump();
      } else {
        return Status::InvalidArgument(where + ": field 'id' is " + JsonType(*id) +
                                       ", expected a string or an integer");
      }
    }
    turns.push_back(std::move(t));
  }
  if (turns.empty()) {
    return Status::InvalidArgument(path +
                                   ": no labelled turns (expected one JSON object per "
                                   "line)");
  }
  return turns;
}

// The rate with its 95% Wilson interval.
void SetRate(int64_t successes, int64_t n, RateWithInterval* out) {
  const Interval ci = WilsonInterval(successes, n);
  *out =
      RateWithInterval{successes, n, n > 0 ? static_cast<double>(successes) / n : 0, ci.lo, ci.hi};
}

std::string Percent(double p) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", p);
  return buf;
}

TurnPrediction Predict(const ClassifierFeatureOptions& features, const RubricModel& r,
                       const std::string& user, const std::string& assistant) {
  TurnPrediction p;
  p.labels = r.labels;
  p.probabilities = r.Probabilities(classifier::ExtractFeatures(features, user, assistant));
  p.score = r.labels[RubricModel::Argmax(p.probabilities)];
  return p;
}

std::string TurnReason(const TurnPrediction& p) {
  size_t best = RubricModel::Argmax(p.probabilities);
  std::string reason = "classifier: score " + std::to_string(p.labels[best]) +
                       " with probability " + Percent(p.probabilities[best]);
  size_t second = best == 0 ? 1 : 0;
  for (size_t j = 0; j < p.probabilities.size(); ++j) {
    if (j != best && p.probabilities[j] > p.probabilities[second]) second = j;
  }
  reason += " (next: " + std::to_string(p.labels[second]) + " at " +
            Percent(p.probabilities[second]) + ")";
  return reason;
}

class ClassifierJudgeImpl final : public ClassifierJudge {
 public:
  ClassifierJudgeImpl(ClassifierModel model, std::string identity)
      : model_(std::move(model)), identity_(std::move(identity)) {}

  const std::string& name() const override { return name_; }
  std::string Identity() const override { return identity_; }

  std::vector<std::string> rubrics() const override {
    std::vector<std::string> out;
    for (const auto& [id, r] : model_.rubrics) out.push_back(id);
    return out;
  }

  Result<TurnPrediction> PredictTurn(const std::string& rubric, const std::string& user,
                                     const std::string& assistant) const override {
    auto it = model_.rubrics.find(rubric);
    if (it == model_.rubrics.end()) return Status::InvalidArgument(MissingRubric(rubric));
    return Predict(model_.features, it->second, user, assistant);
  }

  void Annotate(JudgeInput input, AnnotationCallback done) override {
    Annotation a;
    const Rubric* builtin = FindRubric(input.rubric);
    a.scale = builtin != nullptr ? builtin->scale : Scale::kSeverity;
    auto it = model_.rubrics.find(input.rubric);
    if (it == model_.rubrics.end()) {
      a.outcome = Outcome::kUnscorable;
      a.reason = MissingRubric(input.rubric);
      done(std::move(a));
      return;
    }
    const RubricModel& r = it->second;
    a.scale = r.scale;
    json raw = json::array();
    const std::string* last_user = nullptr;
    static const std::string kNoUser;
    for (const Message& m : input.conversation) {
      if (m.role == Role::kUser) last_user = &m.content;
      if (m.role != Role::kAssistant) continue;
      const TurnPrediction p =
          Predict(model_.features, r, last_user != nullptr ? *last_user : kNoUser, m.content);
      TurnScore ts;
      ts.turn = static_cast<int>(a.turns.size()) + 1;
      ts.score = p.score;
      ts.reason = TurnReason(p);
      json probs = json::array();
      for (double v : p.probabilities) probs.push_back(std::round(v * 1e4) / 1e4);
      raw.push_back({{"turn", ts.turn}, {"labels", p.labels}, {"probabilities", probs}});
      a.turns.push_back(std::move(ts));
    }
    ScoreByWorstTurn(&a);
    if (a.outcome == Outcome::kScored) a.raw_output = json{{"turns", raw}}.dump();
    done(std::move(a));
  }

 private:
  std::string MissingRubric(const std::string& rubric) const {
    std::string have;
    for (const auto& [id, r] : model_.rubrics) have += (have.empty() ? "" : ", ") + id;
    return "the classifier model has no rubric \"" + rubric + "\" (it was trained for: " + have +
           ")";
  }

  const ClassifierModel model_;
  const std::string identity_;
  const std::string name_ = kJudgeName;
};

std::string IdentityOf(const std::string& model_text) {
  return std::string(kJudgeName) + "/" + Sha256Hex(model_text).substr(0, 12);
}

}  // namespace

Result<std::vector<LabelledTurn>> ReadLabelledTurns(const std::string& path) {
  BF_ASSIGN_OR_RETURN(std::string text, Env::Default()->ReadFile(path));
  return ParseLabelledTurns(text, path);
}

Result<ClassifierTrainSummary> TrainClassifierJudge(const std::vector<std::string>& data_paths,
                                                    const ClassifierTrainOptions& options,
                                                    const std::string& out_path) {
  if (data_paths.empty()) return Status::InvalidArgument("no training data file given");
  BF_RETURN_IF_ERROR(classifier::CheckTrainOptions(options));
  std::vector<LabelledTurn> turns;
  std::vector<ClassifierModel::DataFile> files;
  for (const std::string& path : data_paths) {
    BF_ASSIGN_OR_RETURN(std::string text, Env::Default()->ReadFile(path));
    BF_ASSIGN_OR_RETURN(std::vector<LabelledTurn> file_turns, ParseLabelledTurns(text, path));
    files.push_back({std::filesystem::path(path).filename().string(), Sha256Hex(text),
                     static_cast<int64_t>(file_turns.size())});
    for (LabelledTurn& t : file_turns) turns.push_back(std::move(t));
  }
  BF_ASSIGN_OR_RETURN(ClassifierModel model, classifier::TrainModel(turns, options));
  // One file: its own SHA-256, which `sha256sum` reproduces. Several: the SHA-256 of their
  // digests, one per line in the order given.
  if (files.size() == 1) {
    model.data_sha256 = files[0].sha256;
  } else {
    std::string digests;
    for (const auto& f : files) digests += f.sha256 + "\n";
    model.data_sha256 = Sha256Hex(digests);
  }
  model.data_files = std::move(files);

  ClassifierTrainSummary summary;
  summary.data_sha256 = model.data_sha256;
  for (const auto& [id, r] : model.rubrics) {
    ClassifierTrainSummary::RubricSummary s;
    s.rubric = id;
    s.labels = r.labels;
    s.label_counts = r.label_counts;
    int64_t right = 0;
    int64_t n = 0;
    for (const LabelledTurn& t : turns) {
      if (t.rubric != id) continue;
      ++n;
      right += Predict(model.features, r, t.user, t.assistant).score == t.score;
    }
    s.training_accuracy = n == 0 ? 0 : static_cast<double>(right) / static_cast<double>(n);
    summary.rubrics.push_back(std::move(s));
  }
  const std::string text = classifier::SerializeModel(model);
  BF_RETURN_IF_ERROR(Env::Default()->WriteFileAtomic(out_path, text));
  summary.identity = IdentityOf(text);
  return summary;
}

Result<std::unique_ptr<ClassifierJudge>> OpenClassifierJudge(const std::string& path) {
  BF_ASSIGN_OR_RETURN(std::string text, Env::Default()->ReadFile(path));
  BF_ASSIGN_OR_RETURN(ClassifierModel model, classifier::ParseModel(text, path));
  return std::unique_ptr<ClassifierJudge>(
      std::make_unique<ClassifierJudgeImpl>(std::move(model), IdentityOf(text)));
}

Result<std::unique_ptr<Judge>> LoadClassifierJudge(const std::string& path) {
  BF_ASSIGN_OR_RETURN(std::unique_ptr<ClassifierJudge> judge, OpenClassifierJudge(path));
  return std::unique_ptr<Judge>(std::move(judge));
}

Result<RubricAgreement> ComputeAgreement(const std::string& rubric, Scale scale,
                                         const std::vector<std::array<int, 2>>& pairs,
                                         int threshold) {
  const int max = ScaleMax(scale);
  if (threshold < 1 || threshold > max) {
    return Status::InvalidArgument("defect threshold " + std::to_string(threshold) +
                                   " is outside 1.." + std::to_string(max) + " for rubric " +
                                   rubric + " (" + ScaleName(scale) + " scale)");
  }
  RubricAgreement a;
  a.rubric = rubric;
  a.scale = scale;
  a.threshold = threshold;
  const size_t levels = static_cast<size_t>(max) + 1;
  a.confusion.assign(levels, std::vector<int64_t>(levels, 0));
  int64_t exact = 0;
  int64_t within = 0;
  for (const auto& [t, p] : pairs) {
    if (t < 0 || t > max || p < 0 || p > max) {
      return Status::InvalidArgument("score pair (" + std::to_string(t) + ", " + std::to_string(p) +
                                     ") is outside the " + ScaleName(scale) + " scale 0.." +
                                     std::to_string(max));
    }
    ++a.confusion[static_cast<size_t>(t)][static_cast<size_t>(p)];
    exact += t == p;
    within += std::abs(t - p) <= 1;
    const bool true_defect = t >= threshold;
    const bool predicted_defect = p >= threshold;
    a.true_positive += true_defect && predicted_defect;
    a.false_positive += !true_defect && predicted_defect;
    a.false_negative += true_defect && !predicted_defect;
    a.true_negative += !true_defect && !predicted_defect;
  }
  a.n = static_cast<int64_t>(pairs.size());
  SetRate(exact, a.n, &a.exact);
  SetRate(within, a.n, &a.within_one);
  SetRate(a.true_positive, a.true_positive + a.false_positive, &a.precision);
  SetRate(a.true_positive, a.true_positive + a.false_negative, &a.recall);
  const double pr = a.precision.value + a.recall.value;
  a.f1 = pr > 0 ? 2 * a.precision.value * a.recall.value / pr : 0;

  // Quadratic-weighted kappa: 1 - sum(w O) / sum(w E), w = (i - j)^2, E = row_i col_j / n.
  // The usual 1 / (levels - 1)^2 normalisation of w cancels in the ratio.
  if (a.n > 0) {
    std::vector<double> rows(levels, 0), cols(levels, 0);
    for (size_t i = 0; i < levels; ++i) {
      for (size_t j = 0; j < levels; ++j) {
        rows[i] += static_cast<double>(a.confusion[i][j]);
        cols[j] += static_cast<double>(a.confusion[i][j]);
      }
    }
    double observed = 0;
    double expected = 0;
    const double n = static_cast<double>(a.n);
    for (size_t i = 0; i < levels; ++i) {
      for (size_t j = 0; j < levels; ++j) {
        const double d = static_cast<double>(i) - static_cast<double>(j);
        observed += d * d * static_cast<double>(a.confusion[i][j]);
        expected += d * d * rows[i] * cols[j] / n;
      }
    }
    if (expected > 0) a.quadratic_kappa = 1 - observed / expected;
  }
  return a;
}

namespace {

// Pairs of each rubric (true, predicted) plus unscorable counts -> the report's rubric rows.
Result<ValidationReport> BuildReport(
    std::string identity, const std::map<std::string, std::vector<std::array<int, 2>>>& pairs,
    const std::map<std::string, int64_t>& unscorable, const ValidationOptions& options) {
  ValidationReport report;
  report.model_identity = std::move(identity);
  std::map<std::string, bool> ids;
  for (const auto& [id, p] : pairs) ids[id] = true;
  for (const auto& [id, n] : unscorable) ids[id] = true;
  for (const auto& [id, unused] : ids) {
    const Rubric* rubric = FindRubric(id);  // ReadLabelledTurns accepts built-in rubrics only
    auto it = pairs.find(id);
    BF_ASSIGN_OR_RETURN(
        RubricAgreement a,
        ComputeAgreement(id, rubric->scale,
                         it == pairs.end() ? std::vector<std::array<int, 2>>() : it->second,
                         options.threshold));
    if (auto u = unscorable.find(id); u != unscorable.end()) a.unscorable = u->second;
    report.rubrics.push_back(std::move(a));
  }
  return report;
}

}  // namespace

Result<ValidationReport> ValidateClassifierJudge(const std::string& model_path,
                                                 const std::string& data_path,
                                                 const ValidationOptions& options) {
  BF_ASSIGN_OR_RETURN(std::unique_ptr<ClassifierJudge> judge, OpenClassifierJudge(model_path));
  BF_ASSIGN_OR_RETURN(std::vector<LabelledTurn> turns, ReadLabelledTurns(data_path));
  std::map<std::string, std::vector<std::array<int, 2>>> pairs;
  std::map<std::string, int64_t> unscorable;
  const std::vector<std::string> known = judge->rubrics();
  for (const LabelledTurn& t : turns) {
    if (!std::binary_search(known.begin(), known.end(), t.rubric)) {
      ++unscorable[t.rubric];
      continue;
    }
    BF_ASSIGN_OR_RETURN(TurnPrediction p, judge->PredictTurn(t.rubric, t.user, t.assistant));
    pairs[t.rubric].push_back({t.score, p.score});
  }
  return BuildReport(judge->Identity(), pairs, unscorable, options);
}

Result<ValidationReport> CrossValidateClassifierJudge(const std::string& data_path, int folds,
                                                      const ClassifierTrainOptions& options,
                                                      const ValidationOptions& validation) {
  if (folds < 2 || folds > 20) {
    return Status::InvalidArgument("folds is " + std::to_string(folds) + ", expected 2..20");
  }
  BF_RETURN_IF_ERROR(classifier::CheckTrainOptions(options));
  BF_ASSIGN_OR_RETURN(std::vector<LabelledTurn> turns, ReadLabelledTurns(data_path));
  if (turns.size() < static_cast<size_t>(folds)) {
    return Status::InvalidArgument(data_path + ": " + std::to_string(turns.size()) +
                                   " labelled turns cannot fill " + std::to_string(folds) +
                                   " folds");
  }
  // Stratify: every (rubric, score) stratum is shuffled and dealt round-robin, the dealer
  // carrying on from one stratum to the next so that folds end up the same size.
  std::map<std::pair<std::string, int>, std::vector<size_t>> strata;
  for (size_t i = 0; i < turns.size(); ++i) strata[{turns[i].rubric, turns[i].score}].push_back(i);
  std::vector<int> fold_of(turns.size(), 0);
  Random rng(options.seed);
  size_t dealt = 0;
  for (auto& [key, members] : strata) {
    for (size_t i = members.size(); i > 1; --i) std::swap(members[i - 1], members[rng.Below(i)]);
    for (size_t i : members) fold_of[i] = static_cast<int>(dealt++ % static_cast<size_t>(folds));
  }

  std::map<std::string, std::vector<std::array<int, 2>>> pairs;
  std::map<std::string, int64_t> unscorable;
  for (int f = 0; f < folds; ++f) {
    std::vector<LabelledTurn> train;
    for (size_t i = 0; i < turns.size(); ++i) {
      if (fold_of[i] != f) train.push_back(turns[i]);
    }
    auto model = classifier::TrainModel(train, options);
    if (!model.ok()) {
      return model.status().WithContext("fold " + std::to_string(f + 1) + " of " +
                                        std::to_string(folds));
    }
    for (size_t i = 0; i < turns.size(); ++i) {
      if (fold_of[i] != f) continue;
      const LabelledTurn& t = turns[i];
      auto r = model->rubrics.find(t.rubric);
      if (r == model->rubrics.end()) {
        ++unscorable[t.rubric];
        continue;
      }
      pairs[t.rubric].push_back(
          {t.score, Predict(model->features, r->second, t.user, t.assistant).score});
    }
  }
  return BuildReport("cross-validation/" + std::to_string(folds) + " folds", pairs, unscorable,
                     validation);
}

}  // namespace breakfix
