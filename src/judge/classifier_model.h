// The classifier judge's model: one multinomial logistic regression per rubric, its training,
// and its JSON file format (docs/judges.md, "The model file").
//
// A rubric's model knows the scores that occur in its training data ("labels", ascending) and
// holds, per label, a bias and a weight for every feature bucket seen in training; buckets never
// seen have weight 0 and are not stored. P(label | turn) = softmax(bias + W x).
//
// Training minimises the cross-entropy with Adagrad, one example at a time, in an order shuffled
// per epoch by a seeded generator. The L2 penalty is applied to the weights of the features each
// example has (the usual sparse approximation), never to the biases. Everything runs on one
// thread in a fixed order, so the same data and options give bit-identical weights.
//
// ClassifierModel is a value; const methods are safe from any thread.
#ifndef BREAKFIX_JUDGE_CLASSIFIER_MODEL_H_
#define BREAKFIX_JUDGE_CLASSIFIER_MODEL_H_

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "breakfix/classifier_judge.h"
#include "breakfix/judge.h"
#include "breakfix/status.h"
#include "judge/classifier_features.h"

namespace breakfix::classifier {

inline constexpr char kModelFormat[] = "breakfix-classifier-judge";
inline constexpr int kModelFormatVersion = 1;

struct RubricModel {
  std::string rubric;
  Scale scale = Scale::kSeverity;
  std::vector<int> labels;            // ascending, at least two
  std::vector<double> bias;           // one per label
  std::vector<uint32_t> buckets;      // feature buckets with weights, ascending
  std::vector<double> weights;        // buckets.size() x labels.size(), row-major
  int64_t examples = 0;               // training turns of this rubric
  std::vector<int64_t> label_counts;  // training turns per label

  // Fills the bucket -> row index; call after changing `buckets`.
  void Index();
  // Probabilities of each label for these features (sorted by index, as ExtractFeatures gives).
  std::vector<double> Probabilities(const std::vector<SparseFeature>& features) const;
  // The most probable label's position in `labels` (ties: the lower score).
  static size_t Argmax(const std::vector<double>& probabilities);

 private:
  std::unordered_map<uint32_t, uint32_t> row_;
};

struct ClassifierModel {
  ClassifierFeatureOptions features;
  // Provenance: the training data and the settings that produced the weights.
  std::string data_sha256;  // see docs/judges.md: one file's SHA-256, or that of the list
  struct DataFile {
    std::string name;  // base name
    std::string sha256;
    int64_t turns = 0;
  };
  std::vector<DataFile> data_files;
  int epochs = 0;
  double learning_rate = 0;
  double l2 = 0;
  uint64_t seed = 0;
  std::map<std::string, RubricModel> rubrics;  // by rubric id
};

// Trains a model for every rubric of `turns` (provenance fields are left for the caller). A
// rubric with fewer than two different scores, or options out of range, is an InvalidArgument
// error naming it.
Result<ClassifierModel> TrainModel(const std::vector<LabelledTurn>& turns,
                                   const ClassifierTrainOptions& options);

Status CheckTrainOptions(const ClassifierTrainOptions& options);

// The model file's text: JSON, one weight row per line, the same bytes for the same model.
std::string SerializeModel(const ClassifierModel& model);

// Parses and checks a model file's text; errors start with `path` and name the field.
Result<ClassifierModel> ParseModel(const std::string& text, const std::string& path);

}  // namespace breakfix::classifier

#endif  // BREAKFIX_JUDGE_CLASSIFIER_MODEL_H_
