// Rogan-Gladen judge-corrected defect rates with a parametric-bootstrap interval that carries the
// validation's own uncertainty, and the judge validation file (JSON) they are computed from.
#include "breakfix/corrected_rate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <numbers>
#include <utility>

#include "core/atomic_file.h"

namespace breakfix {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// --- Writing ---

// Adds the counts' keys to `j`, after whatever it already holds.
void AddCounts(const BinaryCounts& c, int64_t unscorable, ordered_json* j) {
  (*j)["tp"] = c.tp;
  (*j)["fp"] = c.fp;
  (*j)["fn"] = c.fn;
  (*j)["tn"] = c.tn;
  (*j)["unscorable"] = unscorable;
}

// --- Reading ---

// Walks a parsed file, naming every field by its path in errors.
class FieldReader {
 public:
  explicit FieldReader(std::string name) : name_(std::move(name)) {}

  Status Error(const std::string& path, const json& value, const std::string& expected) const {
    std::string shown = value.dump(-1, ' ', false, json::error_handler_t::replace);
    if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
    return Status::InvalidArgument(name_ + ": " + path + " is " + shown + ", expected " + expected);
  }
  Status Missing(const std::string& path, const std::string& expected) const {
    return Status::InvalidArgument(name_ + ": " + path + " is missing, expected " + expected);
  }

  Result<const json*> Field(const json& object, const std::string& path, const std::string& key,
                            const std::string& expected) const {
    auto it = object.find(key);
    if (it == object.end()) return Missing(Join(path, key), expected);
    return &*it;
  }

  Result<std::string> String(const json& object, const std::string& path, const std::string& key,
                             bool non_empty) const {
    const char* expected = non_empty ? "a non-empty string" : "a string";
    BF_ASSIGN_OR_RETURN(const json* v, Field(object, path, key, expected));
    if (!v->is_string() || (non_empty && v->get<std::string>().empty())) {
      return Error(Join(path, key), *v, expected);
    }
    return v->get<std::string>();
  }

  Result<int64_t> Count(const json& object, const std::string& path, const std::string& key) const {
    BF_ASSIGN_OR_RETURN(const json* v, Field(object, path, key, "a non-negative integer"));
    if (v->is_number_unsigned()) {
      const uint64_t u = v->get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(u);
    } else if (v->is_number_integer() && v->get<int64_t>() >= 0) {
      return v->get<int64_t>();
    }
    return Error(Join(path, key), *v, "a non-negative integer");
  }

  Result<int> Threshold(const json& object, const std::string& path) const {
    BF_ASSIGN_OR_RETURN(const json* v, Field(object, path, "threshold", "an integer 1..7"));
    if (!v->is_number_integer() || v->get<int64_t>() < 1 || v->get<int64_t>() > 7) {
      return Error(Join(path, "threshold"), *v, "an integer 1..7");
    }
    return static_cast<int>(v->get<int64_t>());
  }

  Result<BinaryCounts> Counts(const json& object, const std::string& path,
                              int64_t* unscorable) const {
    if (!object.is_object()) return Error(path, object, "an object {tp, fp, fn, tn, unscorable}");
    BinaryCounts c;
    BF_ASSIGN_OR_RETURN(c.tp, Count(object, path, "tp"));
    BF_ASSIGN_OR_RETURN(c.fp, Count(object, path, "fp"));
    BF_ASSIGN_OR_RETURN(c.fn, Count(object, path, "fn"));
    BF_ASSIGN_OR_RETURN(c.tn, Count(object, path, "tn"));
    BF_ASSIGN_OR_RETURN(*unscorable, Count(object, path, "unscorable"));
    return c;
  }

  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

 private:
  std::string name_;
};

Result<ValidatedJudge> ParseJudge(const FieldReader& r, const json& j, const std::string& path) {
  if (!j.is_object()) return r.Error(path, j, "an object describing one judge");
  ValidatedJudge out;
  BF_ASSIGN_OR_RETURN(out.judge, r.String(j, path, "judge", /*non_empty=*/true));
  BF_ASSIGN_OR_RETURN(out.threshold, r.Threshold(j, path));
  BF_ASSIGN_OR_RETURN(const json* overall,
                      r.Field(j, path, "overall", "an object {tp, fp, fn, tn, unscorable}"));
  BF_ASSIGN_OR_RETURN(out.overall, r.Counts(*overall, path + ".overall", &out.overall_unscorable));
  BF_ASSIGN_OR_RETURN(const json* rubrics,
                      r.Field(j, path, "rubrics", "an object of rubric id -> counts"));
  if (!rubrics->is_object()) {
    return r.Error(path + ".rubrics", *rubrics, "an object of rubric id -> counts");
  }
  for (const auto& [id, v] : rubrics->items()) {
    const std::string rpath = path + ".rubrics." + id;
    if (id.empty()) return r.Error(path + ".rubrics", *rubrics, "non-empty rubric ids");
    RubricValidation rv;
    BF_ASSIGN_OR_RETURN(rv.counts, r.Counts(v, rpath, &rv.unscorable));
    BF_ASSIGN_OR_RETURN(rv.scale, r.String(v, rpath, "scale", /*non_empty=*/true));
    BF_ASSIGN_OR_RETURN(rv.threshold, r.Threshold(v, rpath));
    out.rubrics[id] = std::move(rv);
  }
  return out;
}

// --- The correction ---

// 1 - U in (0, 1], safe for logarithms and powers.
double OpenUniform(Random* rng) { return 1.0 - rng->Uniform(); }

double StandardNormal(Random* rng) {
  // Box-Muller; the second variate is dropped, so each call consumes exactly two uniforms.
  const double u1 = OpenUniform(rng), u2 = rng->Uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

Status CheckOptions(const CorrectedRateOptions& o) {
  if (o.draws < 100 || o.draws > 10'000'000) {
    return Status::InvalidArgument("corrected rate: draws is " + std::to_string(o.draws) +
                                   ", expected 100..10000000");
  }
  if (!(o.level > 0 && o.level < 1)) {
    return Status::InvalidArgument("corrected rate: level is " + std::to_string(o.level) +
                                   ", expected a number strictly between 0 and 1");
  }
  return Status::OK();
}

Status CheckRate(int64_t defects, int64_t n) {
  if (n < 0 || defects < 0 || defects > n) {
    return Status::InvalidArgument("corrected rate: " + std::to_string(defects) + " defects of " +
                                   std::to_string(n) + " items, expected 0 <= defects <= items");
  }
  return Status::OK();
}

// A source of (Se, Sp) per draw: fixed values, or Beta posterior draws from validation counts.
struct AccuracySource {
  bool known = true;
  double se = 1, sp = 1;
  BinaryCounts counts;
};

CorrectedRate Correct(int64_t defects, int64_t n, const AccuracySource& accuracy,
                      const CorrectedRateOptions& options) {
  CorrectedRate out;
  out.defects = defects;
  out.n = n;
  out.sensitivity = accuracy.se;
  out.specificity = accuracy.sp;
  if (n == 0) {
    out.raw_ci = {0, 1};
    out.reason = "no judged items: there is no rate to correct";
    return out;
  }
  out.raw = static_cast<double>(defects) / static_cast<double>(n);

  // The draws: q always; Se and Sp when they are estimates. A separate stream per quantity, so
  // the q draws, and hence raw_ci, do not depend on whether Se and Sp are known.
  Random root(options.seed);
  Random q_rng = root.Fork(1), se_rng = root.Fork(2), sp_rng = root.Fork(3);
  const double qa = static_cast<double>(defects) + 0.5;
  const double qb = static_cast<double>(n - defects) + 0.5;
  std::vector<double> q_draws, lower, upper;
  q_draws.reserve(static_cast<size_t>(options.draws));
  lower.reserve(static_cast<size_t>(options.draws));
  upper.reserve(static_cast<size_t>(options.draws));
  int64_t chance = 0;
  for (int d = 0; d < options.draws; ++d) {
    const double q = SampleBeta(&q_rng, qa, qb);
    double se = accuracy.se, sp = accuracy.sp;
    if (!accuracy.known) {
      se = SampleBeta(&se_rng, static_cast<double>(accuracy.counts.tp) + 0.5,
                      static_cast<double>(accuracy.counts.fn) + 0.5);
      sp = SampleBeta(&sp_rng, static_cast<double>(accuracy.counts.tn) + 0.5,
                      static_cast<double>(accuracy.counts.fp) + 0.5);
    }
    q_draws.push_back(q);
    // Written with the false-positive rate 1 - Sp (exact for Sp >= 1/2), so that a perfect judge
    // gives p == q to the last bit.
    const double false_positive = 1 - sp;
    const double youden = se - false_positive;
    if (youden <= 0) {
      ++chance;
      lower.push_back(0);
      upper.push_back(1);
      continue;
    }
    const double p = std::clamp((q - false_positive) / youden, 0.0, 1.0);
    lower.push_back(p);
    upper.push_back(p);
  }
  out.raw_ci = PercentileInterval(std::move(q_draws), options.level);

  const double youden = accuracy.se - (1 - accuracy.sp);
  if (youden <= 0) {
    char buf[200];
    std::snprintf(buf, sizeof(buf),
                  "the judge is no better than chance (sensitivity %.3f + specificity %.3f <= 1): "
                  "its verdicts say nothing about the true rate, so no correction exists",
                  accuracy.se, accuracy.sp);
    out.reason = buf;
    return out;
  }
  out.defined = true;
  out.unclipped = (out.raw - (1 - accuracy.sp)) / youden;
  out.value = std::clamp(out.unclipped, 0.0, 1.0);
  out.chance_draw_share = static_cast<double>(chance) / static_cast<double>(options.draws);
  out.ci.lo = PercentileInterval(std::move(lower), options.level).lo;
  out.ci.hi = PercentileInterval(std::move(upper), options.level).hi;
  return out;
}

}  // namespace

std::string JudgeValidationToJson(const JudgeValidation& v) {
  ordered_json root;
  root["kind"] = kJudgeValidationKind;
  root["version"] = kJudgeValidationVersion;
  ordered_json labels;
  labels["file"] = v.labels_file;
  labels["sha256"] = v.labels_sha256;
  labels["label_kind"] = v.label_kind;
  labels["rows"] = v.rows;
  labels["skipped_rows"] = v.skipped_rows;
  root["labels"] = labels;
  ordered_json judges = ordered_json::array();
  for (const ValidatedJudge& j : v.judges) {
    ordered_json e;
    e["judge"] = j.judge;
    e["threshold"] = j.threshold;
    ordered_json overall = ordered_json::object();
    AddCounts(j.overall, j.overall_unscorable, &overall);
    e["overall"] = overall;
    ordered_json rubrics = ordered_json::object();
    for (const auto& [id, r] : j.rubrics) {
      ordered_json rj;
      rj["scale"] = r.scale;
      rj["threshold"] = r.threshold;
      AddCounts(r.counts, r.unscorable, &rj);
      rubrics[id] = rj;
    }
    e["rubrics"] = rubrics;
    judges.push_back(e);
  }
  root["judges"] = judges;
  return root.dump(2, ' ', false, ordered_json::error_handler_t::replace) + "\n";
}

Status WriteJudgeValidation(const std::string& path, const JudgeValidation& validation) {
  BF_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> file, AtomicFile::Create(path));
  file->Write(JudgeValidationToJson(validation));
  return file->Commit();
}

Result<JudgeValidation> ParseJudgeValidation(const std::string& text, const std::string& name) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    return Status::InvalidArgument(name + ": not valid JSON (" + std::string(e.what()) +
                                   "); expected a judge validation file written by `breakfix "
                                   "judge validate --out`");
  }
  FieldReader r(name);
  if (!root.is_object()) return r.Error("the file", root, "a JSON object");
  BF_ASSIGN_OR_RETURN(std::string kind, r.String(root, "", "kind", /*non_empty=*/true));
  if (kind != kJudgeValidationKind) {
    return r.Error("kind", root["kind"], std::string("\"") + kJudgeValidationKind + "\"");
  }
  BF_ASSIGN_OR_RETURN(const json* version, r.Field(root, "", "version", "1"));
  if (!version->is_number_integer() || version->get<int64_t>() != kJudgeValidationVersion) {
    return r.Error("version", *version,
                   "1 (a file from a newer breakfix needs that breakfix to read it)");
  }
  JudgeValidation out;
  BF_ASSIGN_OR_RETURN(const json* labels, r.Field(root, "", "labels", "an object"));
  if (!labels->is_object()) return r.Error("labels", *labels, "an object");
  BF_ASSIGN_OR_RETURN(out.labels_file, r.String(*labels, "labels", "file", /*non_empty=*/false));
  BF_ASSIGN_OR_RETURN(out.labels_sha256,
                      r.String(*labels, "labels", "sha256", /*non_empty=*/false));
  BF_ASSIGN_OR_RETURN(out.label_kind,
                      r.String(*labels, "labels", "label_kind", /*non_empty=*/true));
  if (out.label_kind != "binary" && out.label_kind != "three-way" && out.label_kind != "severity") {
    return r.Error("labels.label_kind", (*labels)["label_kind"],
                   "\"binary\", \"three-way\" or \"severity\"");
  }
  BF_ASSIGN_OR_RETURN(out.rows, r.Count(*labels, "labels", "rows"));
  BF_ASSIGN_OR_RETURN(out.skipped_rows, r.Count(*labels, "labels", "skipped_rows"));
  BF_ASSIGN_OR_RETURN(const json* judges, r.Field(root, "", "judges", "a non-empty array"));
  if (!judges->is_array() || judges->empty()) {
    return r.Error("judges", *judges, "a non-empty array");
  }
  for (size_t i = 0; i < judges->size(); ++i) {
    BF_ASSIGN_OR_RETURN(ValidatedJudge j,
                        ParseJudge(r, (*judges)[i], "judges[" + std::to_string(i) + "]"));
    out.judges.push_back(std::move(j));
  }
  return out;
}

Result<JudgeValidation> ReadJudgeValidation(const std::string& path) {
  auto text = Env::Default()->ReadFile(path);
  if (!text.ok()) {
    const Status& s = text.status();
    return Status(s.code() == StatusCode::kNotFound ? StatusCode::kNotFound : s.code(),
                  "judge validation file: " + s.message());
  }
  return ParseJudgeValidation(*text, path);
}

Result<RubricValidation> FindRubricValidation(const JudgeValidation& validation,
                                              const std::string& judge, const std::string& rubric) {
  std::string judges;
  for (const ValidatedJudge& j : validation.judges) {
    judges += (judges.empty() ? "" : ", ") + j.judge;
    if (j.judge != judge) continue;
    auto it = j.rubrics.find(rubric);
    if (it != j.rubrics.end()) return it->second;
    std::string rubrics;
    for (const auto& [id, r] : j.rubrics) rubrics += (rubrics.empty() ? "" : ", ") + id;
    return Status::NotFound("the validation of judge " + judge + " has no rubric \"" + rubric +
                            "\"; it covers: " + (rubrics.empty() ? "(none)" : rubrics));
  }
  return Status::NotFound("the validation file holds no judge " + judge +
                          "; it holds: " + (judges.empty() ? "(none)" : judges));
}

double SampleGamma(Random* rng, double shape) {
  if (shape < 1) {
    // Gamma(a) = Gamma(a + 1) * U^(1/a): keeps the fast method valid below 1.
    const double g = SampleGamma(rng, shape + 1);
    return g * std::pow(OpenUniform(rng), 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x = 0, v = 0;
    do {
      x = StandardNormal(rng);
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = OpenUniform(rng);
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}

double SampleBeta(Random* rng, double a, double b) {
  const double x = SampleGamma(rng, a);
  const double y = SampleGamma(rng, b);
  if (x + y <= 0) return a >= b ? 1.0 : 0.0;  // both underflowed: only for absurdly small shapes
  return x / (x + y);
}

Result<CorrectedRate> CorrectDefectRate(int64_t defects, int64_t n, const BinaryCounts& validation,
                                        const CorrectedRateOptions& options) {
  BF_RETURN_IF_ERROR(CheckOptions(options));
  BF_RETURN_IF_ERROR(CheckRate(defects, n));
  const BinaryCounts& v = validation;
  if (v.tp < 0 || v.fp < 0 || v.fn < 0 || v.tn < 0) {
    return Status::InvalidArgument("corrected rate: negative validation counts (tp " +
                                   std::to_string(v.tp) + ", fp " + std::to_string(v.fp) + ", fn " +
                                   std::to_string(v.fn) + ", tn " + std::to_string(v.tn) + ")");
  }
  AccuracySource accuracy;
  accuracy.known = false;
  accuracy.counts = v;
  const int64_t positives = v.tp + v.fn, negatives = v.tn + v.fp;
  accuracy.se = positives > 0 ? static_cast<double>(v.tp) / static_cast<double>(positives) : 0;
  accuracy.sp = negatives > 0 ? static_cast<double>(v.tn) / static_cast<double>(negatives) : 0;
  if (positives == 0 || negatives == 0) {
    // Draw nothing: report the raw rate and why no correction exists.
    CorrectedRate out = Correct(defects, n, AccuracySource{}, options);
    out.sensitivity = accuracy.se;
    out.specificity = accuracy.sp;
    out.defined = false;
    out.value = 0;
    out.unclipped = 0;
    out.ci = {0, 1};
    out.chance_draw_share = 0;
    if (n == 0) return out;
    out.reason = positives == 0
                     ? "the validation has no human-labelled defect, so the judge's sensitivity "
                       "is unknown and no correction exists"
                     : "the validation has no human-labelled non-defect, so the judge's "
                       "specificity is unknown and no correction exists";
    return out;
  }
  return Correct(defects, n, accuracy, options);
}

Result<CorrectedRate> CorrectDefectRateKnownAccuracy(int64_t defects, int64_t n, double sensitivity,
                                                     double specificity,
                                                     const CorrectedRateOptions& options) {
  BF_RETURN_IF_ERROR(CheckOptions(options));
  BF_RETURN_IF_ERROR(CheckRate(defects, n));
  if (!(sensitivity >= 0 && sensitivity <= 1) || !(specificity >= 0 && specificity <= 1)) {
    return Status::InvalidArgument("corrected rate: sensitivity " + std::to_string(sensitivity) +
                                   " and specificity " + std::to_string(specificity) +
                                   " must both lie in [0, 1]");
  }
  AccuracySource accuracy;
  accuracy.se = sensitivity;
  accuracy.sp = specificity;
  return Correct(defects, n, accuracy, options);
}

}  // namespace breakfix
