// The reproducibility manifest of a run: everything needed to say whether two runs can be
// compared, beyond the configuration hash that names a run.
//
// A manifest records the breakfix version, the suite's content hash and imported data files, each
// family's rubric versions, every model role (targets, simulator, judge) with its identity,
// endpoint and sampling, the run seed, and the distinct `system_fingerprint` values each model
// returned while the run was played. The run loop (eval.h) writes it to the store when a run
// starts and updates it as fingerprints arrive and when the run ends; `breakfix eval` and
// `breakfix report --out` write it as manifest.json (schema: docs/report-schema.md),
// `breakfix runs show` prints it, and `breakfix compare` warns about every difference between two
// runs other than the target.
//
// A manifest never holds an API key: models are described by their identities (which by contract
// hold no secret), with credentials embedded in URLs replaced by "***".
#ifndef BREAKFIX_MANIFEST_H_
#define BREAKFIX_MANIFEST_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "breakfix/status.h"
#include "breakfix/store.h"

namespace breakfix {

// manifest_version of the JSON this build writes; a change in meaning bumps it.
inline constexpr int kRunManifestFormat = 1;

// Sampling settings. Unset fields were not specified (for pinned settings: not pinned).
struct RunManifestSampling {
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int> max_tokens;
  std::vector<std::string> stop;

  bool operator==(const RunManifestSampling& o) const = default;
};

// Where a model is served, as far as its identity tells.
struct RunManifestEndpoint {
  std::string api;    // "openai-chat" (HTTP), "local" (in-process engine)
  std::string model;  // model id sent to the endpoint, or the local model's id
  std::string host;   // host[:port] of the base URL, without credentials ("" for local models)

  bool operator==(const RunManifestEndpoint& o) const = default;
};

// One model role of the run.
struct RunManifestModel {
  std::string role;      // "target", "simulator" or "judge"
  std::string name;      // display name
  std::string identity;  // ChatModel::Identity() (Judge::Identity() for the judge), credentials
                         // in URLs redacted
  std::optional<RunManifestEndpoint> endpoint;  // unset when not served by a model endpoint
                                                // (the refusal-prefix judge, a classifier)
  std::optional<RunManifestSampling> sampling;  // what the run asked for (targets, simulator);
                                                // unset for the judge, whose own settings are
                                                // covered by its identity
  RunManifestSampling pinned;                   // settings the endpoint pins over the request
  std::string prompt_version;  // simulator / LLM-judge prompt template version; "" otherwise
  std::string stop_marker;     // the simulator's stop marker; "" for other roles
  // Distinct system_fingerprint values the model returned during the run, with the number of
  // responses that carried each ("" = the server reported none). Unset for judges that call no
  // model (refusal-prefix, classifier); an LLM judge's answers arrive with its annotations.
  std::optional<std::map<std::string, int64_t>> system_fingerprints;
};

struct RunManifestFamily {
  std::string name;
  std::string metric;  // "defect_rate" or "ungroundedness"
  int threshold = 1;   // x of DR-x
  std::string turns;   // "single" or "multi"
  int max_turns = 1;   // as run (after any --max-turns override)
  std::string rubric;  // rubric id, or "category" (each item's category names its rubric)
  std::map<std::string, std::string> rubric_versions;  // every rubric the family can use -> its
                                                       // version (Rubric::version, "" = unknown)
};

// An imported data file of the suite.
struct RunManifestDatasetFile {
  std::string family;
  std::string path;    // as written in the suite
  std::string sha256;  // hex digest of the whole file when the suite was loaded
};

// One invocation of the run loop on this run: the first, then each resume.
struct RunManifestSession {
  std::string breakfix_version;
  int64_t started_us = 0;   // wall clock, microseconds since the epoch
  int64_t finished_us = 0;  // 0 while running (or when the process died)
  std::string status;       // RunStatusName of how the session ended; "running" until then
};

struct RunManifest {
  int format = kRunManifestFormat;
  std::string breakfix_version;  // the build that started the run (sessions list every build)
  int64_t created_us = 0;        // the run's creation time
  int64_t updated_us = 0;        // when the manifest was last written
  int64_t run_id = 0;
  std::string run_name;
  std::string config_hash;
  std::string suite_name;
  std::string suite_hash;  // Suite::content_hash(): the YAML text and every imported file
  // Imported data files; unset when the suite loader did not report them (the suite hash still
  // covers their contents).
  std::optional<std::vector<RunManifestDatasetFile>> dataset_files;
  std::vector<RunManifestFamily> families;  // the families run, in suite order
  int64_t limit_per_family = 0;             // 0 = every item
  uint64_t seed = 0;                        // the run seed
  std::vector<RunManifestModel> models;     // targets in column order, then simulator, judge
  std::vector<RunManifestSession> sessions;
  // False when the manifest was first recorded on a resume (the run began before manifests
  // existed, or its manifest was unreadable): fingerprints of earlier sessions are then missing.
  bool recorded_from_start = true;
};

// How each model request's seed follows from the run seed, as written into manifest.json.
extern const char kRunManifestRequestSeedRule[];

// manifest.json text (pretty-printed, trailing newline). Deterministic for a given manifest.
std::string RunManifestToJson(const RunManifest& manifest);
// Parses manifest.json text. Errors (kInvalidArgument) name the field and what was expected;
// unknown fields are ignored, so newer manifests with added fields still read.
Result<RunManifest> ParseRunManifest(const std::string& json_text);

// The model entry with this role and name, or null.
const RunManifestModel* FindRunManifestModel(const RunManifest& manifest, const std::string& role,
                                             const std::string& name);

// Everything in which run A (compared on target_a) and run B (on target_b) differ apart from the
// target itself, one human-readable line each: breakfix version, suite hash, dataset files,
// families and their settings, rubric versions, item limit, seed, target sampling, simulator and
// judge (identity, prompt version, sampling, fingerprints), and the target's system_fingerprint
// set when both runs name the target alike (a model swapped behind an unchanged endpoint).
// Fingerprint sets are compared only when both sides observed responses.
std::vector<std::string> RunManifestDifferences(const RunManifest& a, const std::string& target_a,
                                                const RunManifest& b, const std::string& target_b);

// The manifest for a terminal: aligned sections, one model per block.
std::string RenderRunManifestText(const RunManifest& manifest);

// Why a run has no manifest, e.g. "manifest: not recorded (run made before schema 6)".
std::string RunManifestMissingNote(RunManifestState state);

// Replaces the user-info part of every URL in `text` ("https://user:secret@host" ->
// "https://***@host"), so credentials typed into an endpoint URL never reach a manifest.
std::string RedactUrlCredentials(const std::string& text);

}  // namespace breakfix

#endif  // BREAKFIX_MANIFEST_H_
