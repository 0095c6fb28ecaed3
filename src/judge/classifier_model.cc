#include "judge/classifier_model.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "breakfix/env.h"

namespace breakfix::classifier {
namespace {

using nlohmann::json;

// Adagrad's guard against dividing by a zero accumulator.
constexpr double kAdagradEpsilon = 1e-10;

// A stream id per rubric, so that a rubric's example order depends on the seed and the rubric
// alone, not on which other rubrics the data happens to hold.
uint64_t RubricStream(const std::string& rubric) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : rubric) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string RubricIdList() {
  std::string out;
  for (const Rubric& r : AllRubrics()) {
    if (!out.empty()) out += ", ";
    out += r.id;
  }
  return out;
}

// Softmax of `z` in place, shifted by the maximum so that large scores cannot overflow.
void Softmax(std::vector<double>* z) {
  const double max = *std::max_element(z->begin(), z->end());
  double sum = 0;
  for (double& v : *z) {
    v = std::exp(v - max);
    sum += v;
  }
  for (double& v : *z) v /= sum;
}

Result<RubricModel> TrainRubric(const std::string& rubric_id,
                                const std::vector<const LabelledTurn*>& turns,
                                const ClassifierTrainOptions& options) {
  const Rubric* rubric = FindRubric(rubric_id);
  if (rubric == nullptr) {
    return Status::InvalidArgument(turns.front()->where + ": rubric \"" + rubric_id +
                                   "\" is not a built-in rubric (expected one of " +
                                   RubricIdList() + ")");
  }
  RubricModel model;
  model.rubric = rubric_id;
  model.scale = rubric->scale;
  model.examples = static_cast<int64_t>(turns.size());
  std::set<int> label_set;
  for (const LabelledTurn* t : turns) label_set.insert(t->score);
  model.labels.assign(label_set.begin(), label_set.end());
  if (model.labels.size() < 2) {
    return Status::InvalidArgument(
        "rubric \"" + rubric_id + "\": all " + std::to_string(turns.size()) +
        " labelled turns have score " + std::to_string(model.labels.front()) +
        "; a classifier needs examples of at least two different scores (first turn at " +
        turns.front()->where + ")");
  }
  const size_t k = model.labels.size();
  model.label_counts.assign(k, 0);

  // Features once per turn, then buckets renumbered into dense columns (ascending bucket order).
  std::vector<std::vector<SparseFeature>> features;
  features.reserve(turns.size());
  std::set<uint32_t> buckets;
  for (const LabelledTurn* t : turns) {
    features.push_back(ExtractFeatures(options.features, t->user, t->assistant));
    for (const SparseFeature& f : features.back()) buckets.insert(f.index);
  }
  model.buckets.assign(buckets.begin(), buckets.end());
  std::unordered_map<uint32_t, uint32_t> column;
  for (size_t c = 0; c < model.buckets.size(); ++c) {
    column.emplace(model.buckets[c], static_cast<uint32_t>(c));
  }
  struct Example {
    std::vector<std::pair<uint32_t, double>> x;  // (column, value)
    size_t label = 0;                            // position in model.labels
  };
  std::vector<Example> examples(turns.size());
  for (size_t i = 0; i < turns.size(); ++i) {
    for (const SparseFeature& f : features[i]) examples[i].x.emplace_back(column[f.index], f.value);
    examples[i].label = static_cast<size_t>(
        std::lower_bound(model.labels.begin(), model.labels.end(), turns[i]->score) -
        model.labels.begin());
    ++model.label_counts[examples[i].label];
  }
  features.clear();

  std::vector<double>& w = model.weights;
  w.assign(model.buckets.size() * k, 0.0);
  std::vector<double> w_acc(w.size(), 0.0);  // Adagrad's sums of squared gradients
  model.bias.assign(k, 0.0);
  std::vector<double> b_acc(k, 0.0);
  const double lr = options.learning_rate;

  Random rng = Random(options.seed).Fork(RubricStream(rubric_id));
  std::vector<size_t> order(examples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::vector<double> z(k);
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    for (size_t i = order.size(); i > 1; --i) {  // Fisher-Yates
      std::swap(order[i - 1], order[rng.Below(i)]);
    }
    for (size_t i : order) {
      const Example& ex = examples[i];
      for (size_t j = 0; j < k; ++j) z[j] = model.bias[j];
      for (const auto& [col, value] : ex.x) {
        const double* row = &w[static_cast<size_t>(col) * k];
        for (size_t j = 0; j < k; ++j) z[j] += value * row[j];
      }
      Softmax(&z);
      z[ex.label] -= 1.0;  // z is now d(loss)/d(score) per label
      for (size_t j = 0; j < k; ++j) {
        b_acc[j] += z[j] * z[j];
        model.bias[j] -= lr * z[j] / std::sqrt(b_acc[j] + kAdagradEpsilon);
      }
      for (const auto& [col, value] : ex.x) {
        double* row = &w[static_cast<size_t>(col) * k];
        double* acc = &w_acc[static_cast<size_t>(col) * k];
        for (size_t j = 0; j < k; ++j) {
          const double g = value * z[j] + options.l2 * row[j];
          if (g == 0) continue;
          acc[j] += g * g;
          row[j] -= lr * g / std::sqrt(acc[j] + kAdagradEpsilon);
        }
      }
    }
  }
  for (double v : w) {
    if (!std::isfinite(v)) {
      return Status::InvalidArgument("rubric \"" + rubric_id +
                                     "\": training diverged (a weight is not finite); lower "
                                     "the learning rate");
    }
  }
  model.Index();
  return model;
}

// --- Parsing helpers: every error names the field path. ---

std::string Describe(const json& v) {
  std::string text = v.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

class Checker {
 public:
  explicit Checker(std::string path) : path_(std::move(path)) {}

  Status Error(const std::string& field, const std::string& what) const {
    return Status::InvalidArgument(path_ + ": " + field + " " + what);
  }

  Status Keys(const json& obj, const std::string& field,
              const std::vector<std::string>& allowed) const {
    if (!obj.is_object()) {
      return Error(field.empty() ? "the top level" : field,
                   "is " + std::string(obj.type_name()) + ", expected an object");
    }
    for (const auto& [key, value] : obj.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
        return Error(Join(field, key), "is not a known field (expected " + list + ")");
      }
    }
    for (const std::string& key : allowed) {
      if (!obj.contains(key)) return Error(Join(field, key), "is missing");
    }
    return Status::OK();
  }

  Result<int64_t> Int(const json& v, const std::string& field, int64_t lo, int64_t hi) const {
    if (!v.is_number_integer()) {
      return Error(field, "is " + Describe(v) + ", expected an integer in " + std::to_string(lo) +
                              ".." + std::to_string(hi));
    }
    // Unsigned values above INT64_MAX read as negative here and fail the range check below.
    const int64_t i = v.get<int64_t>();
    if (i < lo || i > hi) {
      return Error(field, "is " + std::to_string(i) + ", expected " + std::to_string(lo) + ".." +
                              std::to_string(hi));
    }
    return i;
  }

  Result<double> Number(const json& v, const std::string& field) const {
    if (!v.is_number()) return Error(field, "is " + Describe(v) + ", expected a number");
    const double d = v.get<double>();
    if (!std::isfinite(d)) return Error(field, "is not finite");
    return d;
  }

  Result<bool> Bool(const json& v, const std::string& field) const {
    if (!v.is_boolean()) return Error(field, "is " + Describe(v) + ", expected true or false");
    return v.get<bool>();
  }

  Result<std::string> String(const json& v, const std::string& field) const {
    if (!v.is_string()) return Error(field, "is " + Describe(v) + ", expected a string");
    return v.get<std::string>();
  }

  Result<std::string> Sha256(const json& v, const std::string& field) const {
    BF_ASSIGN_OR_RETURN(std::string s, String(v, field));
    bool hex = s.size() == 64;
    for (char c : s) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!hex) return Error(field, "is \"" + s + "\", expected 64 lowercase hex digits");
    return s;
  }

  Status Array(const json& v, const std::string& field, size_t size) const {
    if (!v.is_array()) {
      return Error(field, "is " + std::string(v.type_name()) + ", expected a list");
    }
    if (size != SIZE_MAX && v.size() != size) {
      return Error(
          field, "has " + std::to_string(v.size()) + " entries, expected " + std::to_string(size));
    }
    return Status::OK();
  }

  static std::string Join(const std::string& a, const std::string& b) {
    return a.empty() ? b : a + "." + b;
  }
  static std::string Index(const std::string& a, size_t i) {
    return a + "[" + std::to_string(i) + "]";
  }

 private:
  std::string path_;
};

Status ParseFeatures(const Checker& c, const json& j, ClassifierFeatureOptions* out) {
  BF_RETURN_IF_ERROR(c.Keys(
      j, "features",
      {"hash", "hash_bits", "char_ngram_min", "char_ngram_max", "word_bigrams", "user_features"}));
  BF_ASSIGN_OR_RETURN(std::string hash, c.String(j["hash"], "features.hash"));
  if (hash != kFeatureHashName) {
    return c.Error("features.hash", "is \"" + hash + "\", expected \"" + kFeatureHashName + "\"");
  }
  BF_ASSIGN_OR_RETURN(int64_t bits, c.Int(j["hash_bits"], "features.hash_bits", 10, 26));
  BF_ASSIGN_OR_RETURN(int64_t max_n, c.Int(j["char_ngram_max"], "features.char_ngram_max", 1, 8));
  BF_ASSIGN_OR_RETURN(int64_t min_n,
                      c.Int(j["char_ngram_min"], "features.char_ngram_min", 1, max_n));
  out->hash_bits = static_cast<int>(bits);
  out->char_ngram_min = static_cast<int>(min_n);
  out->char_ngram_max = static_cast<int>(max_n);
  BF_ASSIGN_OR_RETURN(out->word_bigrams, c.Bool(j["word_bigrams"], "features.word_bigrams"));
  BF_ASSIGN_OR_RETURN(out->user_features, c.Bool(j["user_features"], "features.user_features"));
  return Status::OK();
}

Status ParseTraining(const Checker& c, const json& j, ClassifierModel* m) {
  BF_RETURN_IF_ERROR(c.Keys(
      j, "training", {"data_sha256", "data_files", "epochs", "learning_rate", "l2", "seed"}));
  BF_ASSIGN_OR_RETURN(m->data_sha256, c.Sha256(j["data_sha256"], "training.data_sha256"));
  const json& files = j["data_files"];
  BF_RETURN_IF_ERROR(c.Array(files, "training.data_files", SIZE_MAX));
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string field = Checker::Index("training.data_files", i);
    BF_RETURN_IF_ERROR(c.Keys(files[i], field, {"name", "sha256", "turns"}));
    ClassifierModel::DataFile f;
    BF_ASSIGN_OR_RETURN(f.name, c.String(files[i]["name"], field + ".name"));
    BF_ASSIGN_OR_RETURN(f.sha256, c.Sha256(files[i]["sha256"], field + ".sha256"));
    BF_ASSIGN_OR_RETURN(f.turns, c.Int(files[i]["turns"], field + ".turns", 0, INT64_MAX));
    m->data_files.push_back(std::move(f));
  }
  BF_ASSIGN_OR_RETURN(int64_t epochs, c.Int(j["epochs"], "training.epochs", 1, 1000));
  m->epochs = static_cast<int>(epochs);
  BF_ASSIGN_OR_RETURN(m->learning_rate, c.Number(j["learning_rate"], "training.learning_rate"));
  BF_ASSIGN_OR_RETURN(m->l2, c.Number(j["l2"], "training.l2"));
  if (!j["seed"].is_number_unsigned()) {
    return c.Error("training.seed", "is " + Describe(j["seed"]) + ", expected an unsigned integer");
  }
  m->seed = j["seed"].get<uint64_t>();
  return Status::OK();
}

Result<RubricModel> ParseRubric(const Checker& c, const std::string& id, const json& j,
                                const ClassifierFeatureOptions& features) {
  const std::string field = "rubrics." + id;
  const Rubric* rubric = FindRubric(id);
  if (rubric == nullptr) {
    return c.Error(field, "is not a built-in rubric (expected one of " + RubricIdList() + ")");
  }
  BF_RETURN_IF_ERROR(
      c.Keys(j, field, {"scale", "labels", "examples", "label_counts", "bias", "weights"}));
  RubricModel m;
  m.rubric = id;
  m.scale = rubric->scale;
  BF_ASSIGN_OR_RETURN(std::string scale, c.String(j["scale"], field + ".scale"));
  if (scale != ScaleName(rubric->scale)) {
    return c.Error(field + ".scale", "is \"" + scale + "\", but rubric " + id + " uses the \"" +
                                         ScaleName(rubric->scale) + "\" scale");
  }
  const json& labels = j["labels"];
  BF_RETURN_IF_ERROR(c.Array(labels, field + ".labels", SIZE_MAX));
  if (labels.size() < 2) return c.Error(field + ".labels", "has fewer than two scores");
  for (size_t i = 0; i < labels.size(); ++i) {
    BF_ASSIGN_OR_RETURN(int64_t label, c.Int(labels[i], Checker::Index(field + ".labels", i), 0,
                                             ScaleMax(rubric->scale)));
    if (!m.labels.empty() && label <= m.labels.back()) {
      return c.Error(Checker::Index(field + ".labels", i), "is " + std::to_string(label) +
                                                               ", expected scores in ascending "
                                                               "order without repeats");
    }
    m.labels.push_back(static_cast<int>(label));
  }
  const size_t k = m.labels.size();
  BF_ASSIGN_OR_RETURN(m.examples, c.Int(j["examples"], field + ".examples", 0, INT64_MAX));
  BF_RETURN_IF_ERROR(c.Array(j["label_counts"], field + ".label_counts", k));
  int64_t total = 0;
  for (size_t i = 0; i < k; ++i) {
    BF_ASSIGN_OR_RETURN(int64_t n, c.Int(j["label_counts"][i],
                                         Checker::Index(field + ".label_counts", i), 0, INT64_MAX));
    m.label_counts.push_back(n);
    total += n;
  }
  if (total != m.examples) {
    return c.Error(field + ".label_counts", "sum to " + std::to_string(total) +
                                                ", but examples is " + std::to_string(m.examples));
  }
  BF_RETURN_IF_ERROR(c.Array(j["bias"], field + ".bias", k));
  for (size_t i = 0; i < k; ++i) {
    BF_ASSIGN_OR_RETURN(double b, c.Number(j["bias"][i], Checker::Index(field + ".bias", i)));
    m.bias.push_back(b);
  }
  const json& weights = j["weights"];
  BF_RETURN_IF_ERROR(c.Array(weights, field + ".weights", SIZE_MAX));
  const int64_t buckets = int64_t{1} << features.hash_bits;
  m.buckets.reserve(weights.size());
  m.weights.reserve(weights.size() * k);
  for (size_t r = 0; r < weights.size(); ++r) {
    const std::string row_field = Checker::Index(field + ".weights", r);
    BF_RETURN_IF_ERROR(c.Array(weights[r], row_field, k + 1));
    BF_ASSIGN_OR_RETURN(int64_t bucket,
                        c.Int(weights[r][0], Checker::Index(row_field, 0), 0, buckets - 1));
    if (!m.buckets.empty() && bucket <= m.buckets.back()) {
      return c.Error(Checker::Index(row_field, 0),
                     "is bucket " + std::to_string(bucket) +
                         ", expected rows in ascending bucket order without repeats");
    }
    m.buckets.push_back(static_cast<uint32_t>(bucket));
    for (size_t i = 1; i <= k; ++i) {
      BF_ASSIGN_OR_RETURN(double w, c.Number(weights[r][i], Checker::Index(row_field, i)));
      m.weights.push_back(w);
    }
  }
  m.Index();
  return m;
}

}  // namespace

void RubricModel::Index() {
  row_.clear();
  row_.reserve(buckets.size());
  for (size_t r = 0; r < buckets.size(); ++r) row_.emplace(buckets[r], static_cast<uint32_t>(r));
}

std::vector<double> RubricModel::Probabilities(const std::vector<SparseFeature>& features) const {
  const size_t k = labels.size();
  std::vector<double> z = bias;
  for (const SparseFeature& f : features) {
    auto it = row_.find(f.index);
    if (it == row_.end()) continue;  // never seen in training: weight 0
    const double* row = &weights[static_cast<size_t>(it->second) * k];
    for (size_t j = 0; j < k; ++j) z[j] += f.value * row[j];
  }
  Softmax(&z);
  return z;
}

size_t RubricModel::Argmax(const std::vector<double>& p) {
  size_t best = 0;
  for (size_t j = 1; j < p.size(); ++j) {
    if (p[j] > p[best]) best = j;
  }
  return best;
}

Status CheckTrainOptions(const ClassifierTrainOptions& o) {
  BF_RETURN_IF_ERROR(CheckFeatureOptions(o.features));
  if (o.epochs < 1 || o.epochs > 1000) {
    return Status::InvalidArgument("epochs is " + std::to_string(o.epochs) + ", expected 1..1000");
  }
  if (!(o.learning_rate > 0) || !std::isfinite(o.learning_rate)) {
    return Status::InvalidArgument("learning_rate is " + std::to_string(o.learning_rate) +
                                   ", expected a positive number");
  }
  if (!(o.l2 >= 0) || !std::isfinite(o.l2)) {
    return Status::InvalidArgument("l2 is " + std::to_string(o.l2) + ", expected a number >= 0");
  }
  return Status::OK();
}

Result<ClassifierModel> TrainModel(const std::vector<LabelledTurn>& turns,
                                   const ClassifierTrainOptions& options) {
  BF_RETURN_IF_ERROR(CheckTrainOptions(options));
  if (turns.empty()) return Status::InvalidArgument("no labelled turns to train on");
  std::map<std::string, std::vector<const LabelledTurn*>> by_rubric;
  for (const LabelledTurn& t : turns) by_rubric[t.rubric].push_back(&t);
  ClassifierModel model;
  model.features = options.features;
  model.epochs = options.epochs;
  model.learning_rate = options.learning_rate;
  model.l2 = options.l2;
  model.seed = options.seed;
  for (const auto& [rubric, rubric_turns] : by_rubric) {
    BF_ASSIGN_OR_RETURN(RubricModel m, TrainRubric(rubric, rubric_turns, options));
    model.rubrics.emplace(rubric, std::move(m));
  }
  return model;
}

std::string SerializeModel(const ClassifierModel& m) {
  const ClassifierFeatureOptions& f = m.features;
  const json features = {{"hash", kFeatureHashName},           {"hash_bits", f.hash_bits},
                         {"char_ngram_min", f.char_ngram_min}, {"char_ngram_max", f.char_ngram_max},
                         {"word_bigrams", f.word_bigrams},     {"user_features", f.user_features}};
  json files = json::array();
  for (const ClassifierModel::DataFile& d : m.data_files) {
    files.push_back({{"name", d.name}, {"sha256", d.sha256}, {"turns", d.turns}});
  }
  const json training = {
      {"data_sha256", m.data_sha256},     {"data_files", files}, {"epochs", m.epochs},
      {"learning_rate", m.learning_rate}, {"l2", m.l2},          {"seed", m.seed}};
  // Written by hand around nlohmann's compact dumps so that each weight row gets its own line:
  // the file stays diffable and a reader can find a rubric's header without scrolling sideways.
  std::string out = "{\n";
  out += " \"format\": " + json(kModelFormat).dump() + ",\n";
  out += " \"format_version\": " + std::to_string(kModelFormatVersion) + ",\n";
  out += " \"features\": " + features.dump() + ",\n";
  out += " \"training\": " + training.dump() + ",\n";
  out += " \"rubrics\": {";
  bool first_rubric = true;
  for (const auto& [id, r] : m.rubrics) {
    out += first_rubric ? "\n" : ",\n";
    first_rubric = false;
    out += "  " + json(id).dump() + ": {\n";
    out += "   \"scale\": " + json(ScaleName(r.scale)).dump() + ",\n";
    out += "   \"labels\": " + json(r.labels).dump() + ",\n";
    out += "   \"examples\": " + std::to_string(r.examples) + ",\n";
    out += "   \"label_counts\": " + json(r.label_counts).dump() + ",\n";
    out += "   \"bias\": " + json(r.bias).dump() + ",\n";
    out += "   \"weights\": [";
    const size_t k = r.labels.size();
    for (size_t row = 0; row < r.buckets.size(); ++row) {
      json line = json::array({r.buckets[row]});
      for (size_t j = 0; j < k; ++j) line.push_back(r.weights[row * k + j]);
      out += row == 0 ? "\n    " : ",\n    ";
      out += line.dump();
    }
    out += r.buckets.empty() ? "]\n  }" : "\n   ]\n  }";
  }
  out += "\n }\n}\n";
  return out;
}

Result<ClassifierModel> ParseModel(const std::string& text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return Status::InvalidArgument(path + ": not valid JSON: " + e.what());
  }
  const Checker c(path);
  if (j.is_object() && j.contains("format") && j["format"] != kModelFormat) {
    return c.Error("format", "is " + Describe(j["format"]) + ", expected \"" + kModelFormat +
                                 "\" (is this a classifier judge model?)");
  }
  BF_RETURN_IF_ERROR(
      c.Keys(j, "", {"format", "format_version", "features", "training", "rubrics"}));
  BF_ASSIGN_OR_RETURN(int64_t version, c.Int(j["format_version"], "format_version", 0, INT32_MAX));
  if (version != kModelFormatVersion) {
    return c.Error("format_version", "is " + std::to_string(version) + "; this breakfix reads " +
                                         std::to_string(kModelFormatVersion));
  }
  ClassifierModel m;
  BF_RETURN_IF_ERROR(ParseFeatures(c, j["features"], &m.features));
  BF_RETURN_IF_ERROR(ParseTraining(c, j["training"], &m));
  const json& rubrics = j["rubrics"];
  if (!rubrics.is_object() || rubrics.empty()) {
    return c.Error("rubrics", "is " + Describe(rubrics) +
                                  ", expected an object of rubric id -> "
                                  "model with at least one rubric");
  }
  for (const auto& [id, value] : rubrics.items()) {
    BF_ASSIGN_OR_RETURN(RubricModel r, ParseRubric(c, id, value, m.features));
    m.rubrics.emplace(id, std::move(r));
  }
  return m;
}

}  // namespace breakfix::classifier
