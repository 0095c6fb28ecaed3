// Judge-corrected defect rates, and the judge validation file they are computed from.
//
// A judge that misses some defects (sensitivity Se < 1) and flags some non-defects (specificity
// Sp < 1) reports an apparent defect rate q that is not the true rate p: in expectation
// q = p * Se + (1 - p) * (1 - Sp). Solving for p gives the Rogan-Gladen estimate
//   p = (q + Sp - 1) / (Se + Sp - 1),
// clipped to [0, 1]. Se and Sp come from validating the judge against human labels
// (`breakfix judge validate --out FILE` writes them as confusion counts); they are estimates from
// a finite sample, and the interval here carries that uncertainty as well as the sampling
// uncertainty of q. When Se + Sp <= 1 the judge is no better than a coin that ignores the item:
// its verdicts carry no information about p and no correction exists. That is reported, never
// divided through.
//
// Every function is pure and thread-safe; the interval is deterministic for a seed.
// docs/judges.md ("Judge-corrected rates") describes the method and the file schema.
#ifndef BREAKFIX_CORRECTED_RATE_H_
#define BREAKFIX_CORRECTED_RATE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "breakfix/agreement.h"
#include "breakfix/env.h"
#include "breakfix/interval.h"
#include "breakfix/status.h"

namespace breakfix {

// --- The judge validation file ---

inline constexpr char kJudgeValidationKind[] = "breakfix-judge-validation";
inline constexpr int kJudgeValidationVersion = 1;

// One judge's binary agreement on one rubric's labelled rows.
struct RubricValidation {
  std::string scale;    // the scale the judge annotated on ("binary", "refusal", "severity", ...)
  int threshold = 1;    // a judge score >= threshold on that scale was counted as a defect
  BinaryCounts counts;  // against the human labels, over the scored rows
  int64_t unscorable = 0;  // rows the judge could not score (not in counts)
};

// One judge (or one verdict column) of a validation.
struct ValidatedJudge {
  std::string judge;     // the judge's Identity(), or "column:<name>" for a verdict column
  int threshold = 1;     // the --threshold of the validation run
  BinaryCounts overall;  // every rubric together
  int64_t overall_unscorable = 0;
  std::map<std::string, RubricValidation> rubrics;  // by rubric id
};

// The whole file. `judges` keeps the order of the run (one judge, or the verdict columns in the
// order given).
struct JudgeValidation {
  std::string labels_file;    // the labelled file as given on the command line
  std::string labels_sha256;  // SHA-256 hex of its bytes
  std::string label_kind;     // "binary", "three-way" or "severity"
  int64_t rows = 0;           // labelled rows used
  int64_t skipped_rows = 0;   // rows skipped with --skip-bad-rows
  std::vector<ValidatedJudge> judges;
};

// The file's JSON text (two-space indented, keys in a fixed order, trailing newline).
std::string JudgeValidationToJson(const JudgeValidation& validation);
// Writes JudgeValidationToJson() to `path` atomically (AtomicFile).
Status WriteJudgeValidation(const std::string& path, const JudgeValidation& validation);

// Parses a validation file's text; `name` is used in errors. Every required field is checked, and
// an error names the file and the field path (for example
// `v.json: judges[0].rubrics.jailbreak.tp is "x", expected a non-negative integer`). Unknown keys
// are ignored, so that later version-1 writers may add information; a change of meaning bumps
// "version", and a version other than 1 is an error.
Result<JudgeValidation> ParseJudgeValidation(const std::string& text, const std::string& name);
// Reads and parses `path`. A missing file is NotFound; anything wrong inside is InvalidArgument.
Result<JudgeValidation> ReadJudgeValidation(const std::string& path);

// The counts of `judge` (its Identity()) on `rubric`. NotFound, naming the judges and rubrics the
// file holds, when there are none.
Result<RubricValidation> FindRubricValidation(const JudgeValidation& validation,
                                              const std::string& judge, const std::string& rubric);

// --- The corrected rate ---

struct CorrectedRateOptions {
  int draws = 20000;         // parametric bootstrap draws for the interval (at least 100)
  uint64_t seed = 20240601;  // seeds the draws; same seed, same interval
  double level = 0.95;       // two-sided interval level, in (0, 1)
};

struct CorrectedRate {
  int64_t defects = 0;  // k: items the judge called defects
  int64_t n = 0;        // items judged (scored)
  double raw = 0;       // q = k / n, the judge's apparent defect rate
  // The plain interval of q by the same draws (an equal-tailed Jeffreys interval: quantiles of
  // Beta(k + 1/2, n - k + 1/2)). With a perfect judge the corrected interval equals it.
  Interval raw_ci;
  double sensitivity = 0;  // Se = TP / (TP + FN) of the validation (or as given)
  double specificity = 0;  // Sp = TN / (TN + FP)
  // False when no correction exists: Se + Sp <= 1, a validation without human-labelled defects
  // (Se unknown) or without non-defects (Sp unknown), or n == 0. `reason` then says which, and
  // value and ci are not meaningful.
  bool defined = false;
  std::string reason;
  double unclipped = 0;  // (q + Sp - 1) / (Se + Sp - 1); may fall outside [0, 1]
  double value = 0;      // `unclipped` clipped to [0, 1]
  Interval ci{0, 1};     // interval of the clipped estimate (see CorrectDefectRate)
  // Share of draws with Se + Sp <= 1. Such a draw could be any rate, so it counts as 0 for the
  // lower bound and as 1 for the upper: a judge barely better than chance gets a wide interval.
  double chance_draw_share = 0;
};

// The Rogan-Gladen correction of `defects` out of `n`, with Se and Sp estimated from the
// validation counts. The interval is a seeded parametric bootstrap: each draw takes q, Se and Sp
// independently from their Jeffreys posteriors Beta(k + 1/2, n - k + 1/2),
// Beta(TP + 1/2, FN + 1/2) and Beta(TN + 1/2, FP + 1/2), computes the clipped estimate, and the
// interval is the equal-tailed percentile interval of the draws at options.level. A smaller
// validation set gives a wider interval.
// Errors (InvalidArgument): negative counts, defects > n, options out of range.
Result<CorrectedRate> CorrectDefectRate(int64_t defects, int64_t n, const BinaryCounts& validation,
                                        const CorrectedRateOptions& options = {});

// The same with Se and Sp known exactly (for example published by a judge's vendor without
// counts): only q is drawn. Se and Sp must lie in [0, 1].
Result<CorrectedRate> CorrectDefectRateKnownAccuracy(int64_t defects, int64_t n, double sensitivity,
                                                     double specificity,
                                                     const CorrectedRateOptions& options = {});

// --- Exposed for tests ---

// A Gamma(shape, 1) variate (Marsaglia and Tsang's method; shape < 1 by the boost
// Gamma(shape + 1) * U^(1/shape)). shape > 0.
double SampleGamma(Random* rng, double shape);
// A Beta(a, b) variate as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b). a, b > 0.
double SampleBeta(Random* rng, double a, double b);

}  // namespace breakfix

#endif  // BREAKFIX_CORRECTED_RATE_H_
