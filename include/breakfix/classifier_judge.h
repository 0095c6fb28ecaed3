// The classifier judge: a fast, offline, deterministic judge learned from labelled turns.
//
// For users who already hold labelled data (their own annotations, or an LLM judge's verdicts
// they reviewed), a classifier scores thousands of conversations a second on one CPU, gives the
// same answer every time, and needs no endpoint. It is a multinomial logistic regression per
// rubric over hashed sparse text features of the assistant reply (and, with a distinct prefix,
// of the user message before it). docs/judges.md describes the model, the file format and how to
// read the validation numbers.
//
// Training data is JSON Lines, one labelled assistant turn per line:
//   {"rubric": "violence", "user": "...", "assistant": "...", "score": 0, "id": "optional"}
// The rubric must be a built-in one (judge.h) and the score an integer on its scale.
#ifndef BREAKFIX_CLASSIFIER_JUDGE_H_
#define BREAKFIX_CLASSIFIER_JUDGE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "breakfix/judge.h"
#include "breakfix/status.h"

namespace breakfix {

// One labelled assistant turn.
struct LabelledTurn {
  std::string id;         // optional "id" of the line; "" when absent
  std::string rubric;     // built-in rubric id
  std::string user;       // the user message before the reply ("" when there was none)
  std::string assistant;  // the reply being scored
  int score = 0;          // on the rubric's scale
  std::string where;      // "file:line", for messages
};

// Reads a JSONL file of labelled turns. Blank lines are skipped. Errors name file:line and the
// field: invalid JSON, a missing or mistyped field, an unknown key, a rubric that is not built
// in, a score outside the rubric's scale. A file without any labelled turn is an error too.
Result<std::vector<LabelledTurn>> ReadLabelledTurns(const std::string& path);

// How text becomes features. Stored in the model file, so a model always scores with the
// settings it was trained with.
struct ClassifierFeatureOptions {
  int hash_bits = 20;         // features are hashed into 2^hash_bits buckets (10..26)
  int char_ngram_min = 3;     // shortest character n-gram of the reply (1..char_ngram_max)
  int char_ngram_max = 5;     // longest character n-gram of the reply (at most 8)
  bool word_bigrams = true;   // reply word bigrams besides unigrams
  bool user_features = true;  // user-message word unigrams (prefixed, so they never mix with
                              // the reply's)
};

struct ClassifierTrainOptions {
  ClassifierFeatureOptions features;
  int epochs = 20;             // passes over the data (1..1000)
  double learning_rate = 0.5;  // Adagrad base step (> 0)
  double l2 = 1e-5;            // L2 penalty per weight, applied to the features of each example
  uint64_t seed = 20240601;    // shuffles the example order of each epoch; same seed, same model
};

// What training produced, for the command line to print.
struct ClassifierTrainSummary {
  std::string identity;     // the new model's judge Identity()
  std::string data_sha256;  // as recorded in the model file
  struct RubricSummary {
    std::string rubric;
    std::vector<int> labels;            // scores seen, ascending
    std::vector<int64_t> label_counts;  // turns per score
    double training_accuracy = 0;       // exact agreement on the training turns (optimistic)
  };
  std::vector<RubricSummary> rubrics;  // ascending by rubric id
};

// Trains one model for every rubric in the data (each needs at least two different scores) and
// writes it atomically to `out_path` as JSON. `data_paths` are read in order and concatenated.
// The same files and options give a byte-identical model file.
Result<ClassifierTrainSummary> TrainClassifierJudge(const std::vector<std::string>& data_paths,
                                                    const ClassifierTrainOptions& options,
                                                    const std::string& out_path);

// Per-label probabilities of one assistant turn.
struct TurnPrediction {
  int score = 0;                      // the most probable label (ties: the lower score)
  std::vector<int> labels;            // the scores the rubric's model knows, ascending
  std::vector<double> probabilities;  // one per label, summing to 1
};

// A loaded classifier model. Immutable after loading: every method is safe to call from any
// thread, and Annotate() answers synchronously (the callback runs before it returns).
class ClassifierJudge : public Judge {
 public:
  // The rubrics this model can score, ascending.
  virtual std::vector<std::string> rubrics() const = 0;
  // Scores one reply. A rubric the model lacks is an InvalidArgument error naming the rubrics
  // it has.
  virtual Result<TurnPrediction> PredictTurn(const std::string& rubric, const std::string& user,
                                             const std::string& assistant) const = 0;
};

// Loads a model file written by TrainClassifierJudge. Every field is checked; errors name the
// file and the field (e.g. "rubrics.violence.weights[12][3]") and say what was expected.
//
// The judge: name() "classifier"; Identity() "classifier/<first 12 hex of the SHA-256 of the
// model file>". Annotate() scores each assistant turn with the user message before it; the
// conversation's score is its worst turn. A rubric absent from the model, or a conversation
// without an assistant turn, gives an unscorable annotation saying why.
Result<std::unique_ptr<ClassifierJudge>> OpenClassifierJudge(const std::string& path);
Result<std::unique_ptr<Judge>> LoadClassifierJudge(const std::string& path);

// --- Validation ---

struct RateWithInterval {
  int64_t successes = 0;
  int64_t n = 0;
  double value = 0;  // successes / n (0 when n == 0)
  double lo = 0;     // 95% Wilson interval; [0, 1] when n == 0
  double hi = 1;
};

// Agreement of predicted with true scores on one rubric.
struct RubricAgreement {
  std::string rubric;
  Scale scale = Scale::kSeverity;
  int64_t n = 0;                // labelled turns scored
  int64_t unscorable = 0;       // labelled turns whose rubric the model lacks
  RateWithInterval exact;       // predicted == true
  RateWithInterval within_one;  // |predicted - true| <= 1
  // Quadratic-weighted Cohen's kappa over the scale's levels; nullopt when it is undefined
  // (no expected disagreement: every true and predicted score is the same level).
  std::optional<double> quadratic_kappa;
  // confusion[t][p]: turns with true score t predicted as p, t and p in 0..ScaleMax.
  std::vector<std::vector<int64_t>> confusion;
  // Binary defect agreement: a defect is a score >= threshold.
  int threshold = 1;
  int64_t true_positive = 0, false_positive = 0, false_negative = 0, true_negative = 0;
  RateWithInterval precision;  // TP / (TP + FP)
  RateWithInterval recall;     // TP / (TP + FN)
  double f1 = 0;               // 2PR / (P + R); 0 when P + R == 0
};

struct ValidationOptions {
  int threshold = 1;  // defect threshold: a score >= threshold is a defect (DR-x's x)
};

struct ValidationReport {
  std::string model_identity;            // the judge's Identity(), or "cross-validation/<k> folds"
  std::vector<RubricAgreement> rubrics;  // ascending by rubric id
};

// Scores every labelled turn of `data_path` with the model and compares.
Result<ValidationReport> ValidateClassifierJudge(const std::string& model_path,
                                                 const std::string& data_path,
                                                 const ValidationOptions& options);

// k-fold cross-validation on one file: turns are stratified by (rubric, score), shuffled with
// options.seed and dealt round-robin into `folds` folds (2..20); each fold is scored by a model
// trained on the others. A training split with fewer than two scores for a rubric is an error.
Result<ValidationReport> CrossValidateClassifierJudge(const std::string& data_path, int folds,
                                                      const ClassifierTrainOptions& options,
                                                      const ValidationOptions& validation);

// The agreement numbers of (true, predicted) score pairs on `scale`. Pairs outside the scale are
// an InvalidArgument error. Exposed for tests and for callers with their own predictions.
Result<RubricAgreement> ComputeAgreement(const std::string& rubric, Scale scale,
                                         const std::vector<std::array<int, 2>>& true_predicted,
                                         int threshold);

}  // namespace breakfix

#endif  // BREAKFIX_CLASSIFIER_JUDGE_H_
