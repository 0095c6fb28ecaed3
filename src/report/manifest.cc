// The run manifest as JSON (manifest.json, docs/report-schema.md), as text, and the differences
// between two runs that `breakfix compare` warns about.
#include "breakfix/manifest.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>
#include <set>
#include <sstream>

namespace breakfix {

const char kRunManifestRequestSeedRule[] =
    "first 8 hex digits of SHA-256(\"<seed>/<item id>\"), masked to 31 bits";

namespace {

using nlohmann::json;

std::string Iso8601(int64_t us) {
  if (us <= 0) return "";
  std::time_t t = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

std::string Short(const std::string& hash) { return hash.size() > 12 ? hash.substr(0, 12) : hash; }

json SamplingToJson(const RunManifestSampling& s) {
  json j = json::object();
  if (s.temperature) j["temperature"] = *s.temperature;
  if (s.top_p) j["top_p"] = *s.top_p;
  if (s.max_tokens) j["max_tokens"] = *s.max_tokens;
  if (!s.stop.empty()) j["stop"] = s.stop;
  return j;
}

json FingerprintsToJson(const std::map<std::string, int64_t>& fingerprints) {
  json out = json::array();
  for (const auto& [value, count] : fingerprints) {
    out.push_back({{"value", value.empty() ? json(nullptr) : json(value)}, {"count", count}});
  }
  return out;
}

json ModelToJson(const RunManifestModel& m) {
  json j = {{"role", m.role}, {"name", m.name}, {"identity", m.identity}};
  if (m.endpoint) {
    j["endpoint"] = {
        {"api", m.endpoint->api}, {"model", m.endpoint->model}, {"host", m.endpoint->host}};
  } else {
    j["endpoint"] = nullptr;
  }
  j["sampling"] = m.sampling ? SamplingToJson(*m.sampling) : json(nullptr);
  j["pinned_sampling"] = SamplingToJson(m.pinned);
  j["prompt_version"] = m.prompt_version.empty() ? json(nullptr) : json(m.prompt_version);
  if (!m.stop_marker.empty()) j["stop_marker"] = m.stop_marker;
  j["system_fingerprints"] =
      m.system_fingerprints ? FingerprintsToJson(*m.system_fingerprints) : json(nullptr);
  return j;
}

// --- Reading, with errors that name the field ---

class Reader {
 public:
  explicit Reader(std::string where) : where_(std::move(where)) {}

  Status Fail(const std::string& what) const {
    return Status::InvalidArgument("manifest: " + where_ + ": " + what);
  }
  Reader In(const std::string& field) const { return Reader(where_ + "." + field); }
  Reader At(size_t i) const { return Reader(where_ + "[" + std::to_string(i) + "]"); }

  Result<const json*> Field(const json& obj, const char* key, bool required) const {
    if (!obj.is_object()) return Fail("expected an object");
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
      if (required) return Fail("field \"" + std::string(key) + "\" is missing");
      return static_cast<const json*>(nullptr);
    }
    return &*it;
  }
  Result<std::string> String(const json& obj, const char* key, bool required = true) const {
    BF_ASSIGN_OR_RETURN(const json* v, Field(obj, key, required));
    if (v == nullptr) return std::string();
    if (!v->is_string()) return In(key).Fail("expected a string, found " + v->dump());
    return v->get<std::string>();
  }
  Result<int64_t> Int(const json& obj, const char* key, bool required = true) const {
    BF_ASSIGN_OR_RETURN(const json* v, Field(obj, key, required));
    if (v == nullptr) return int64_t{0};
    if (!v->is_number_integer()) return In(key).Fail("expected an integer, found " + v->dump());
    return v->get<int64_t>();
  }

  Result<RunManifestSampling> Sampling(const json& j) const {
    if (!j.is_object()) return Fail("expected an object of sampling settings");
    RunManifestSampling s;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const json& v = it.value();
      if (it.key() == "temperature" || it.key() == "top_p") {
        if (!v.is_number()) return In(it.key()).Fail("expected a number");
        (it.key() == "temperature" ? s.temperature : s.top_p) = v.get<double>();
      } else if (it.key() == "max_tokens") {
        if (!v.is_number_integer()) return In(it.key()).Fail("expected an integer");
        s.max_tokens = v.get<int>();
      } else if (it.key() == "stop") {
        if (!v.is_array()) return In("stop").Fail("expected an array of strings");
        for (const json& x : v) {
          if (!x.is_string()) return In("stop").Fail("expected an array of strings");
          s.stop.push_back(x.get<std::string>());
        }
      }
    }
    return s;
  }

  Result<RunManifestModel> Model(const json& j) const {
    RunManifestModel m;
    BF_ASSIGN_OR_RETURN(m.role, String(j, "role"));
    BF_ASSIGN_OR_RETURN(m.name, String(j, "name"));
    BF_ASSIGN_OR_RETURN(m.identity, String(j, "identity"));
    BF_ASSIGN_OR_RETURN(const json* ep, Field(j, "endpoint", false));
    if (ep != nullptr) {
      Reader r = In("endpoint");
      RunManifestEndpoint e;
      BF_ASSIGN_OR_RETURN(e.api, r.String(*ep, "api"));
      BF_ASSIGN_OR_RETURN(e.model, r.String(*ep, "model", false));
      BF_ASSIGN_OR_RETURN(e.host, r.String(*ep, "host", false));
      m.endpoint = e;
    }
    BF_ASSIGN_OR_RETURN(const json* sampling, Field(j, "sampling", false));
    if (sampling != nullptr) {
      BF_ASSIGN_OR_RETURN(m.sampling, In("sampling").Sampling(*sampling));
    }
    BF_ASSIGN_OR_RETURN(const json* pinned, Field(j, "pinned_sampling", false));
    if (pinned != nullptr) {
      BF_ASSIGN_OR_RETURN(m.pinned, In("pinned_sampling").Sampling(*pinned));
    }
    BF_ASSIGN_OR_RETURN(m.prompt_version, String(j, "prompt_version", false));
    BF_ASSIGN_OR_RETURN(m.stop_marker, String(j, "stop_marker", false));
    BF_ASSIGN_OR_RETURN(const json* fps, Field(j, "system_fingerprints", false));
    if (fps != nullptr) {
      Reader r = In("system_fingerprints");
      if (!fps->is_array()) return r.Fail("expected an array of {value, count}");
      std::map<std::string, int64_t> out;
      for (size_t i = 0; i < fps->size(); ++i) {
        const json& f = (*fps)[i];
        BF_ASSIGN_OR_RETURN(std::string value, r.At(i).String(f, "value", false));
        BF_ASSIGN_OR_RETURN(int64_t count, r.At(i).Int(f, "count"));
        if (count < 0) return r.At(i).In("count").Fail("expected a count >= 0");
        out[value] += count;
      }
      m.system_fingerprints = std::move(out);
    }
    return m;
  }

 private:
  std::string where_;
};

// --- Differences ---

std::string SamplingText(const std::optional<RunManifestSampling>& s) {
  if (!s) return "not recorded";
  std::string out;
  auto add = [&](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
  if (s->temperature) add("temperature " + Number(*s->temperature));
  if (s->top_p) add("top_p " + Number(*s->top_p));
  if (s->max_tokens) add("max_tokens " + std::to_string(*s->max_tokens));
  if (!s->stop.empty()) add("stop " + json(s->stop).dump());
  return out.empty() ? "none" : out;
}

std::string FingerprintSetText(const std::map<std::string, int64_t>& fps) {
  std::string out;
  for (const auto& [value, count] : fps) {
    out += (out.empty() ? "" : ", ") + (value.empty() ? std::string("(none reported)") : value) +
           " x" + std::to_string(count);
  }
  return "{" + out + "}";
}

std::set<std::string> Keys(const std::map<std::string, int64_t>& m) {
  std::set<std::string> out;
  for (const auto& [k, v] : m) out.insert(k);
  return out;
}

// Appends a warning when the two models' fingerprint sets differ (both observed).
void CompareFingerprints(const std::string& who, const RunManifestModel& a,
                         const RunManifestModel& b, const std::string& why,
                         std::vector<std::string>* out) {
  if (!a.system_fingerprints || !b.system_fingerprints) return;
  if (a.system_fingerprints->empty() || b.system_fingerprints->empty()) return;
  if (Keys(*a.system_fingerprints) == Keys(*b.system_fingerprints)) return;
  out->push_back(who + " system_fingerprint changed: A " +
                 FingerprintSetText(*a.system_fingerprints) + ", B " +
                 FingerprintSetText(*b.system_fingerprints) + why);
}

// A role other than the target (simulator or judge): identity, prompt, sampling, fingerprints.
void CompareRole(const std::string& role, const RunManifest& a, const RunManifest& b,
                 std::vector<std::string>* out) {
  const RunManifestModel* ma = nullptr;
  const RunManifestModel* mb = nullptr;
  for (const RunManifestModel& m : a.models) {
    if (m.role == role) ma = &m;
  }
  for (const RunManifestModel& m : b.models) {
    if (m.role == role) mb = &m;
  }
  if (ma == nullptr && mb == nullptr) return;
  if (ma == nullptr || mb == nullptr) {
    out->push_back(role + " differs: A " + (ma ? "\"" + ma->name + "\"" : std::string("none")) +
                   ", B " + (mb ? "\"" + mb->name + "\"" : std::string("none")));
    return;
  }
  if (ma->identity != mb->identity) {
    out->push_back(role + " identity differs: A " + ma->identity + ", B " + mb->identity);
  }
  if (ma->prompt_version != mb->prompt_version) {
    out->push_back(role + " prompt version differs: A " +
                   (ma->prompt_version.empty() ? "none" : ma->prompt_version) + ", B " +
                   (mb->prompt_version.empty() ? "none" : mb->prompt_version));
  }
  if (ma->stop_marker != mb->stop_marker) {
    out->push_back(role + " stop marker differs: A " + json(ma->stop_marker).dump() + ", B " +
                   json(mb->stop_marker).dump());
  }
  if (ma->sampling != mb->sampling) {
    out->push_back(role + " sampling differs: A " + SamplingText(ma->sampling) + ", B " +
                   SamplingText(mb->sampling));
  }
  if (ma->identity == mb->identity) {
    CompareFingerprints(role + " \"" + ma->name + "\"", *ma, *mb,
                        " (same identity: the model behind the endpoint may have changed)", out);
  }
}

std::string FamilySettings(const RunManifestFamily& f) {
  std::string s = f.metric;
  if (f.metric == "defect_rate") s += " DR-" + std::to_string(f.threshold);
  s += ", " + f.turns + "-turn";
  if (f.turns == "multi") s += " (max " + std::to_string(f.max_turns) + ")";
  s += ", rubric " + f.rubric;
  return s;
}

std::string DatasetKey(const RunManifestDatasetFile& f) { return f.family + ":" + f.path; }

}  // namespace

std::string RunManifestToJson(const RunManifest& m) {
  json j;
  j["manifest_version"] = m.format;
  j["breakfix_version"] = m.breakfix_version;
  j["created_us"] = m.created_us;
  j["created"] = Iso8601(m.created_us);
  j["updated_us"] = m.updated_us;
  j["run"] = {{"id", m.run_id}, {"name", m.run_name}, {"config_hash", m.config_hash}};
  json suite = {{"name", m.suite_name}, {"hash", m.suite_hash}};
  if (m.dataset_files) {
    json files = json::array();
    for (const RunManifestDatasetFile& f : *m.dataset_files) {
      files.push_back({{"family", f.family}, {"path", f.path}, {"sha256", f.sha256}});
    }
    suite["dataset_files"] = files;
  } else {
    suite["dataset_files"] = nullptr;
  }
  j["suite"] = suite;
  json families = json::array();
  for (const RunManifestFamily& f : m.families) {
    families.push_back({{"name", f.name},
                        {"metric", f.metric},
                        {"threshold", f.threshold},
                        {"turns", f.turns},
                        {"max_turns", f.max_turns},
                        {"rubric", f.rubric},
                        {"rubric_versions", f.rubric_versions}});
  }
  j["families"] = families;
  j["limit_per_family"] = m.limit_per_family;
  j["seed"] = m.seed;
  j["request_seed"] = kRunManifestRequestSeedRule;
  json models = json::array();
  for (const RunManifestModel& model : m.models) models.push_back(ModelToJson(model));
  j["models"] = models;
  json sessions = json::array();
  for (const RunManifestSession& s : m.sessions) {
    sessions.push_back({{"breakfix_version", s.breakfix_version},
                        {"started_us", s.started_us},
                        {"finished_us", s.finished_us == 0 ? json(nullptr) : json(s.finished_us)},
                        {"status", s.status}});
  }
  j["sessions"] = sessions;
  j["recorded_from_start"] = m.recorded_from_start;
  // Model names and identities come from configuration and may hold any bytes: never throw.
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<RunManifest> ParseRunManifest(const std::string& json_text) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("manifest: not valid JSON");
  Reader r("$");
  if (!j.is_object()) return r.Fail("expected an object");
  RunManifest m;
  BF_ASSIGN_OR_RETURN(int64_t format, r.Int(j, "manifest_version"));
  if (format < 1 || format > kRunManifestFormat) {
    return r.In("manifest_version")
        .Fail("version " + std::to_string(format) + " is not supported (this build reads 1.." +
              std::to_string(kRunManifestFormat) + ")");
  }
  m.format = static_cast<int>(format);
  BF_ASSIGN_OR_RETURN(m.breakfix_version, r.String(j, "breakfix_version"));
  BF_ASSIGN_OR_RETURN(m.created_us, r.Int(j, "created_us"));
  BF_ASSIGN_OR_RETURN(m.updated_us, r.Int(j, "updated_us", false));
  BF_ASSIGN_OR_RETURN(const json* run, r.Field(j, "run", true));
  BF_ASSIGN_OR_RETURN(m.run_id, r.In("run").Int(*run, "id", false));
  BF_ASSIGN_OR_RETURN(m.run_name, r.In("run").String(*run, "name"));
  BF_ASSIGN_OR_RETURN(m.config_hash, r.In("run").String(*run, "config_hash", false));
  BF_ASSIGN_OR_RETURN(const json* suite, r.Field(j, "suite", true));
  Reader rs = r.In("suite");
  BF_ASSIGN_OR_RETURN(m.suite_name, rs.String(*suite, "name"));
  BF_ASSIGN_OR_RETURN(m.suite_hash, rs.String(*suite, "hash"));
  BF_ASSIGN_OR_RETURN(const json* files, rs.Field(*suite, "dataset_files", false));
  if (files != nullptr) {
    if (!files->is_array()) return rs.In("dataset_files").Fail("expected an array");
    m.dataset_files.emplace();
    for (size_t i = 0; i < files->size(); ++i) {
      Reader rf = rs.In("dataset_files").At(i);
      RunManifestDatasetFile f;
      BF_ASSIGN_OR_RETURN(f.family, rf.String((*files)[i], "family", false));
      BF_ASSIGN_OR_RETURN(f.path, rf.String((*files)[i], "path"));
      BF_ASSIGN_OR_RETURN(f.sha256, rf.String((*files)[i], "sha256"));
      m.dataset_files->push_back(std::move(f));
    }
  }
  BF_ASSIGN_OR_RETURN(const json* families, r.Field(j, "families", true));
  if (!families->is_array()) return r.In("families").Fail("expected an array");
  for (size_t i = 0; i < families->size(); ++i) {
    const json& fj = (*families)[i];
    Reader rf = r.In("families").At(i);
    RunManifestFamily f;
    BF_ASSIGN_OR_RETURN(f.name, rf.String(fj, "name"));
    BF_ASSIGN_OR_RETURN(f.metric, rf.String(fj, "metric", false));
    BF_ASSIGN_OR_RETURN(int64_t threshold, rf.Int(fj, "threshold", false));
    f.threshold = static_cast<int>(threshold);
    BF_ASSIGN_OR_RETURN(f.turns, rf.String(fj, "turns", false));
    BF_ASSIGN_OR_RETURN(int64_t max_turns, rf.Int(fj, "max_turns", false));
    f.max_turns = static_cast<int>(max_turns);
    BF_ASSIGN_OR_RETURN(f.rubric, rf.String(fj, "rubric", false));
    BF_ASSIGN_OR_RETURN(const json* versions, rf.Field(fj, "rubric_versions", false));
    if (versions != nullptr) {
      if (!versions->is_object()) return rf.In("rubric_versions").Fail("expected an object");
      for (auto it = versions->begin(); it != versions->end(); ++it) {
        if (!it.value().is_string()) {
          return rf.In("rubric_versions").In(it.key()).Fail("expected a string");
        }
        f.rubric_versions[it.key()] = it.value().get<std::string>();
      }
    }
    m.families.push_back(std::move(f));
  }
  BF_ASSIGN_OR_RETURN(m.limit_per_family, r.Int(j, "limit_per_family", false));
  BF_ASSIGN_OR_RETURN(const json* seed, r.Field(j, "seed", true));
  if (!seed->is_number_unsigned() && !(seed->is_number_integer() && seed->get<int64_t>() >= 0)) {
    return r.In("seed").Fail("expected a non-negative integer, found " + seed->dump());
  }
  m.seed = seed->get<uint64_t>();
  BF_ASSIGN_OR_RETURN(const json* models, r.Field(j, "models", true));
  if (!models->is_array()) return r.In("models").Fail("expected an array");
  for (size_t i = 0; i < models->size(); ++i) {
    BF_ASSIGN_OR_RETURN(RunManifestModel model, r.In("models").At(i).Model((*models)[i]));
    m.models.push_back(std::move(model));
  }
  BF_ASSIGN_OR_RETURN(const json* sessions, r.Field(j, "sessions", false));
  if (sessions != nullptr) {
    if (!sessions->is_array()) return r.In("sessions").Fail("expected an array");
    for (size_t i = 0; i < sessions->size(); ++i) {
      const json& sj = (*sessions)[i];
      Reader rs2 = r.In("sessions").At(i);
      RunManifestSession s;
      BF_ASSIGN_OR_RETURN(s.breakfix_version, rs2.String(sj, "breakfix_version"));
      BF_ASSIGN_OR_RETURN(s.started_us, rs2.Int(sj, "started_us"));
      BF_ASSIGN_OR_RETURN(s.finished_us, rs2.Int(sj, "finished_us", false));
      BF_ASSIGN_OR_RETURN(s.status, rs2.String(sj, "status", false));
      m.sessions.push_back(std::move(s));
    }
  }
  auto from_start = j.find("recorded_from_start");
  if (from_start != j.end() && !from_start->is_null()) {
    if (!from_start->is_boolean()) return r.In("recorded_from_start").Fail("expected a boolean");
    m.recorded_from_start = from_start->get<bool>();
  }
  return m;
}

const RunManifestModel* FindRunManifestModel(const RunManifest& manifest, const std::string& role,
                                             const std::string& name) {
  for (const RunManifestModel& m : manifest.models) {
    if (m.role == role && m.name == name) return &m;
  }
  return nullptr;
}

std::vector<std::string> RunManifestDifferences(const RunManifest& a, const std::string& target_a,
                                                const RunManifest& b, const std::string& target_b) {
  std::vector<std::string> out;
  if (a.breakfix_version != b.breakfix_version) {
    out.push_back("breakfix version differs: A " + a.breakfix_version + ", B " +
                  b.breakfix_version);
  }
  if (a.suite_name != b.suite_name || a.suite_hash != b.suite_hash) {
    out.push_back("suite differs: A " + a.suite_name + " (hash " + Short(a.suite_hash) + "), B " +
                  b.suite_name + " (hash " + Short(b.suite_hash) + ")");
  }
  if (a.dataset_files && b.dataset_files) {
    std::map<std::string, std::string> fa, fb;
    for (const RunManifestDatasetFile& f : *a.dataset_files) fa[DatasetKey(f)] = f.sha256;
    for (const RunManifestDatasetFile& f : *b.dataset_files) fb[DatasetKey(f)] = f.sha256;
    for (const auto& [key, sha] : fa) {
      auto it = fb.find(key);
      if (it == fb.end()) {
        out.push_back("dataset file " + key + " is only in A (sha256 " + Short(sha) + ")");
      } else if (it->second != sha) {
        out.push_back("dataset file " + key + " differs: A sha256 " + Short(sha) + ", B sha256 " +
                      Short(it->second));
      }
    }
    for (const auto& [key, sha] : fb) {
      if (!fa.count(key)) {
        out.push_back("dataset file " + key + " is only in B (sha256 " + Short(sha) + ")");
      }
    }
  }

  // Families: the selection, each common family's settings, and its rubric versions.
  std::map<std::string, const RunManifestFamily*> fams_b;
  for (const RunManifestFamily& f : b.families) fams_b[f.name] = &f;
  std::string only_a, only_b;
  for (const RunManifestFamily& f : a.families) {
    auto it = fams_b.find(f.name);
    if (it == fams_b.end()) {
      only_a += (only_a.empty() ? "" : ", ") + f.name;
      continue;
    }
    const RunManifestFamily& g = *it->second;
    if (FamilySettings(f) != FamilySettings(g)) {
      out.push_back("family " + f.name + " differs: A " + FamilySettings(f) + "; B " +
                    FamilySettings(g));
    }
    for (const auto& [rubric, version] : f.rubric_versions) {
      auto v = g.rubric_versions.find(rubric);
      if (v != g.rubric_versions.end() && v->second != version) {
        out.push_back("rubric " + rubric + " (family " + f.name + ") version differs: A " +
                      version + ", B " + v->second);
      }
    }
  }
  for (const RunManifestFamily& f : b.families) {
    bool in_a = false;
    for (const RunManifestFamily& g : a.families) in_a |= g.name == f.name;
    if (!in_a) only_b += (only_b.empty() ? "" : ", ") + f.name;
  }
  if (!only_a.empty()) out.push_back("families only in A: " + only_a);
  if (!only_b.empty()) out.push_back("families only in B: " + only_b);
  if (a.limit_per_family != b.limit_per_family) {
    auto limit = [](int64_t n) { return n == 0 ? std::string("all") : std::to_string(n); };
    out.push_back("items per family differ: A " + limit(a.limit_per_family) + ", B " +
                  limit(b.limit_per_family));
  }
  if (a.seed != b.seed) {
    out.push_back("seed differs: A " + std::to_string(a.seed) + ", B " + std::to_string(b.seed));
  }

  // The targets: only what the run asked of them (sampling) and, for the same name, whether the
  // endpoint answered from the same build.
  const RunManifestModel* ta = FindRunManifestModel(a, "target", target_a);
  const RunManifestModel* tb = FindRunManifestModel(b, "target", target_b);
  if (ta != nullptr && tb != nullptr) {
    if (ta->sampling != tb->sampling) {
      out.push_back("target sampling differs: A " + SamplingText(ta->sampling) + ", B " +
                    SamplingText(tb->sampling));
    }
    if (target_a == target_b) {
      CompareFingerprints("target \"" + target_a + "\"", *ta, *tb,
                          " (same target name: the model behind the endpoint may have changed)",
                          &out);
    }
  }
  CompareRole("simulator", a, b, &out);
  CompareRole("judge", a, b, &out);
  return out;
}

std::string RenderRunManifestText(const RunManifest& m) {
  std::ostringstream o;
  o << "run        " << m.run_name << " (id " << m.run_id << ")\n";
  o << "manifest   version " << m.format << ", breakfix " << m.breakfix_version << ", created "
    << Iso8601(m.created_us) << ", updated " << Iso8601(m.updated_us) << "\n";
  if (!m.recorded_from_start) {
    o << "           recorded from a resumed session: earlier sessions' fingerprints are missing\n";
  }
  o << "config     " << m.config_hash << "\n";
  o << "suite      " << m.suite_name << ", hash " << m.suite_hash << "\n";
  if (!m.dataset_files) {
    o << "datasets   not listed (the suite hash covers every imported file)\n";
  } else if (m.dataset_files->empty()) {
    o << "datasets   none imported\n";
  } else {
    o << "datasets\n";
    for (const RunManifestDatasetFile& f : *m.dataset_files) {
      o << "  " << f.sha256 << "  " << f.path << " (" << f.family << ")\n";
    }
  }
  o << "seed       " << m.seed << " (request seed: " << kRunManifestRequestSeedRule << ")\n";
  o << "limit      "
    << (m.limit_per_family == 0 ? std::string("every item")
                                : std::to_string(m.limit_per_family) + " items per family")
    << "\n";
  o << "families\n";
  for (const RunManifestFamily& f : m.families) {
    o << "  " << f.name << ": " << FamilySettings(f) << "\n";
    for (const auto& [rubric, version] : f.rubric_versions) {
      o << "    rubric " << rubric << " version " << (version.empty() ? "unknown" : version)
        << "\n";
    }
  }
  o << "models\n";
  for (const RunManifestModel& model : m.models) {
    o << "  " << model.role << " " << model.name << "\n";
    o << "    identity      " << model.identity << "\n";
    if (model.endpoint) {
      o << "    endpoint      " << model.endpoint->api << ", model \"" << model.endpoint->model
        << "\"";
      if (!model.endpoint->host.empty()) o << " at " << model.endpoint->host;
      o << "\n";
    }
    if (model.sampling) o << "    sampling      " << SamplingText(model.sampling) << "\n";
    if (model.pinned != RunManifestSampling{}) {
      o << "    pinned        " << SamplingText(model.pinned) << " (by the endpoint)\n";
    }
    if (!model.prompt_version.empty()) o << "    prompt        " << model.prompt_version << "\n";
    if (!model.stop_marker.empty()) o << "    stop marker   " << model.stop_marker << "\n";
    if (!model.system_fingerprints) {
      o << "    fingerprints  none (this role calls no model)\n";
    } else if (model.system_fingerprints->empty()) {
      o << "    fingerprints  no responses recorded\n";
    } else {
      o << "    fingerprints  " << FingerprintSetText(*model.system_fingerprints) << "\n";
    }
  }
  o << "sessions\n";
  for (size_t i = 0; i < m.sessions.size(); ++i) {
    const RunManifestSession& s = m.sessions[i];
    o << "  " << i + 1 << ". breakfix " << s.breakfix_version << ", started "
      << Iso8601(s.started_us) << ", "
      << (s.finished_us == 0 ? std::string("not finished") : "finished " + Iso8601(s.finished_us))
      << ", " << s.status << "\n";
  }
  return o.str();
}

std::string RunManifestMissingNote(RunManifestState state) {
  switch (state) {
    case RunManifestState::kBeforeSchema:
      return "manifest: not recorded (run made before schema " +
             std::to_string(kRunManifestSchemaVersion) + ")";
    case RunManifestState::kNotRecorded:
      return "manifest: not recorded (the run was stored without one)";
    case RunManifestState::kRecorded:
      break;
  }
  return "manifest: recorded";
}

std::string RedactUrlCredentials(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (true) {
    const size_t scheme = text.find("://", pos);
    if (scheme == std::string::npos) break;
    const size_t start = scheme + 3;
    size_t end = start;
    // The authority ends at the path, query or fragment, or where the URL itself ends inside
    // the surrounding text (a quote, whitespace).
    while (end < text.size() &&
           std::string("/?#\"' \t\r\n\\").find(text[end]) == std::string::npos) {
      ++end;
    }
    const size_t at = text.rfind('@', end == start ? start : end - 1);
    out.append(text, pos, start - pos);
    if (at != std::string::npos && at >= start && at < end) {
      out += "***";
      out.append(text, at, end - at);
    } else {
      out.append(text, start, end - start);
    }
    pos = end;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

}  // namespace breakfix
