// Campaigns: the YAML file, the grid of attacks, running them with resumable journals, and the
// records they leave in the store.
#include "breakfix/campaign.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "breakfix/hash.h"
#include "dataset/yaml_reader.h"

namespace breakfix {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Reader = dataset::YamlReader;

bool UsesAttacker(const std::string& strategy) {
  return strategy == "crescendo" || strategy == "pair" || strategy == "tap";
}

Status ParseSettings(const Reader& r, const YAML::Node& n, AttackSettings* s) {
  BF_RETURN_IF_ERROR(r.Keys(n, "settings",
                            {"success_threshold", "max_turns", "max_backtracks", "width",
                             "branching", "shots", "max_tokens", "target_temperature"}));
  BF_RETURN_IF_ERROR(r.Get(n, "success_threshold", &s->success_threshold, "an integer"));
  if (s->success_threshold < 1 || s->success_threshold > 10) {
    return r.At(n["success_threshold"], "success_threshold must be in 1..10");
  }
  struct IntKey {
    const char* key;
    int* value;
  };
  for (const IntKey& k : {IntKey{"max_turns", &s->max_turns},
                          {"max_backtracks", &s->max_backtracks},
                          {"width", &s->width},
                          {"branching", &s->branching},
                          {"shots", &s->shots},
                          {"max_tokens", &s->max_tokens}}) {
    BF_RETURN_IF_ERROR(r.Get(n, k.key, k.value, "an integer"));
    if (*k.value < (std::string(k.key) == "max_backtracks" ? 0 : 1)) {
      return r.At(n[k.key], std::string(k.key) + " is out of range");
    }
  }
  BF_RETURN_IF_ERROR(r.Get(n, "target_temperature", &s->target_temperature, "a number"));
  return Status::OK();
}

}  // namespace

Result<CampaignConfig> ParseCampaignConfig(const std::string& yaml_text, const std::string& file) {
  Reader r(file);
  BF_ASSIGN_OR_RETURN(YAML::Node root, r.LoadMap(yaml_text));
  BF_RETURN_IF_ERROR(
      r.Keys(root, "the campaign file",
             {"name", "seed", "concurrency", "objectives", "strategies", "converters", "personas",
              "targets", "attacker", "scorer", "converter_model", "models", "settings"}));
  const std::string base = fs::path(file).parent_path().string();
  CampaignConfig c;
  c.file = file;
  BF_RETURN_IF_ERROR(r.Get(root, "name", &c.name, "a string"));
  if (c.name.empty()) return r.At(root, "name: required (it keys every attack)");
  BF_RETURN_IF_ERROR(r.Get(root, "seed", &c.seed, "an unsigned integer"));
  BF_RETURN_IF_ERROR(r.Get(root, "concurrency", &c.concurrency, "an integer"));
  if (c.concurrency < 1 || c.concurrency > 256) {
    return r.At(root["concurrency"], "concurrency must be in 1..256");
  }

  const YAML::Node objectives = root["objectives"];
  if (!objectives || !objectives.IsSequence() || objectives.size() == 0) {
    return r.At(objectives ? objectives : root,
                "objectives: expected a list of {csv: FILE} / {suite: NAME} / "
                "{builtin: indirect_injection}");
  }
  for (const YAML::Node& o : objectives) {
    BF_RETURN_IF_ERROR(
        r.Keys(o, "an objective source", {"csv", "suite", "builtin", "limit", "categories"}));
    ObjectiveSource s;
    const YAML::Mark m = o.Mark();
    s.where = file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
    BF_RETURN_IF_ERROR(r.Get(o, "csv", &s.csv, "a file path"));
    BF_RETURN_IF_ERROR(r.Get(o, "suite", &s.suite, "a suite name or file"));
    BF_RETURN_IF_ERROR(r.Get(o, "builtin", &s.builtin, "indirect_injection"));
    BF_RETURN_IF_ERROR(r.Get(o, "limit", &s.limit, "an integer"));
    BF_RETURN_IF_ERROR(r.Strings(o, "categories", &s.categories));
    if ((!s.csv.empty()) + (!s.suite.empty()) + (!s.builtin.empty()) != 1) {
      return r.At(o, "an objective source needs exactly one of csv, suite or builtin");
    }
    if (!s.builtin.empty() && s.builtin != "indirect_injection") {
      return r.At(o["builtin"], "builtin: the only built-in objectives are indirect_injection");
    }
    if (s.limit < 0) return r.At(o["limit"], "limit must be >= 0");
    s.csv = dataset::ResolvePath(base, s.csv);
    s.suite = dataset::ResolveSuitePath(base, s.suite);
    c.objectives.push_back(std::move(s));
  }

  BF_RETURN_IF_ERROR(r.Strings(root, "strategies", &c.strategies));
  if (c.strategies.empty()) return r.At(root, "strategies: expected a non-empty list");
  for (size_t i = 0; i < c.strategies.size(); ++i) {
    Result<std::unique_ptr<Strategy>> s = MakeStrategy(c.strategies[i]);
    if (!s.ok()) return r.At(root["strategies"][i], s.status().message());
  }
  if (const YAML::Node conv = root["converters"]) {
    if (!conv.IsSequence()) return r.At(conv, "converters: expected a list of chains (lists)");
    c.converters.clear();
    for (const YAML::Node& chain : conv) {
      if (!chain.IsSequence()) return r.At(chain, "a converter chain must be a list, [] for none");
      std::vector<std::string> specs;
      for (const YAML::Node& spec : chain) {
        if (!spec.IsScalar()) return r.At(spec, "a converter must be a string");
        const std::string text = spec.as<std::string>();
        // Checked now; LLM converters get their model when the campaign runs.
        Result<std::unique_ptr<Converter>> made = MakeConverter(text, nullptr);
        if (!made.ok() &&
            made.status().message().find("needs a converter model") == std::string::npos) {
          return r.At(spec, made.status().message());
        }
        specs.push_back(text);
      }
      c.converters.push_back(std::move(specs));
    }
    if (c.converters.empty()) c.converters = {{}};
  }
  std::vector<std::string> personas;
  BF_RETURN_IF_ERROR(r.Strings(root, "personas", &personas));
  if (!personas.empty()) {
    c.personas.clear();
    for (size_t i = 0; i < personas.size(); ++i) {
      Result<AttackerPersona> p = ParseAttackerPersona(personas[i]);
      if (!p.ok()) return r.At(root["personas"][i], p.status().message());
      c.personas.push_back(*p);
    }
  }
  BF_RETURN_IF_ERROR(r.Strings(root, "targets", &c.targets));
  if (c.targets.empty()) return r.At(root, "targets: expected a non-empty list of model specs");
  BF_RETURN_IF_ERROR(r.Get(root, "attacker", &c.attacker, "a model spec"));
  BF_RETURN_IF_ERROR(r.Get(root, "scorer", &c.scorer, "a model spec"));
  BF_RETURN_IF_ERROR(r.Get(root, "converter_model", &c.converter_model, "a model spec"));
  for (const std::string& s : c.strategies) {
    if (UsesAttacker(s) && c.attacker.empty()) {
      return r.At(root, "strategy " + s + " needs an attacker model (attacker: SPEC)");
    }
  }
  if (c.scorer.empty()) return r.At(root, "scorer: required (it rates every reply)");
  for (std::string* spec : {&c.attacker, &c.scorer, &c.converter_model}) {
    *spec = dataset::ResolveSpecPath(base, *spec);
  }
  for (std::string& t : c.targets) t = dataset::ResolveSpecPath(base, t);
  if (const YAML::Node m = root["models"]) c.models_yaml = YAML::Dump(m);
  if (const YAML::Node s = root["settings"]) BF_RETURN_IF_ERROR(ParseSettings(r, s, &c.settings));
  return c;
}

Result<std::vector<Objective>> LoadCampaignObjectives(const CampaignConfig& config) {
  std::vector<Objective> out;
  std::set<std::string> ids;
  for (const ObjectiveSource& s : config.objectives) {
    std::vector<Objective> loaded;
    if (!s.csv.empty()) {
      BF_ASSIGN_OR_RETURN(loaded, ReadObjectivesCsv(s.csv));
    } else if (!s.suite.empty()) {
      BF_ASSIGN_OR_RETURN(loaded, ObjectivesFromSuite(s.suite));
    } else {
      loaded = IndirectInjectionObjectives();
    }
    int64_t kept = 0;
    for (Objective& o : loaded) {
      if (!s.categories.empty() &&
          std::find(s.categories.begin(), s.categories.end(), o.category) == s.categories.end()) {
        continue;
      }
      if (s.limit > 0 && kept >= s.limit) break;
      if (!ids.insert(o.id).second) {
        return Status::InvalidArgument(s.where + ": objective " + o.id +
                                       " appears twice in the campaign");
      }
      out.push_back(std::move(o));
      ++kept;
    }
  }
  if (out.empty()) return Status::InvalidArgument(config.file + ": no objectives to attack");
  return out;
}

std::vector<PlannedAttack> PlanCampaign(const CampaignConfig& config,
                                        const std::vector<Objective>& objectives) {
  std::vector<PlannedAttack> plan;
  for (const Objective& o : objectives) {
    const bool injection = o.source == "injection";
    for (const std::string& target : config.targets) {
      for (const std::string& strategy : config.strategies) {
        if ((strategy == "indirect_injection") != injection) continue;
        for (size_t chain = 0; chain < config.converters.size(); ++chain) {
          const bool persona = UsesAttacker(strategy);
          const size_t personas = persona ? config.personas.size() : 1;
          for (size_t p = 0; p < personas; ++p) {
            PlannedAttack a;
            a.position = static_cast<int64_t>(plan.size());
            a.objective = o;
            a.strategy = strategy;
            a.converter_chain = chain;
            a.target = target;
            a.uses_persona = persona;
            a.persona = persona ? config.personas[p] : AttackerPersona::kIntermediate;
            plan.push_back(std::move(a));
          }
        }
      }
    }
  }
  return plan;
}

namespace {

// The journal on the store, serialised: the store is one SQLite connection.
class StoreJournal : public CallJournal {
 public:
  StoreJournal(Store* store, std::mutex* mu) : store_(store), mu_(mu) {}
  Result<std::optional<JournalEntry>> Find(const std::string& attack, int64_t seq) override {
    std::lock_guard<std::mutex> lock(*mu_);
    BF_ASSIGN_OR_RETURN(std::optional<AttackCallRecord> r, store_->FindAttackCall(attack, seq));
    if (!r) return std::optional<JournalEntry>();
    JournalEntry e;
    e.role = r->role == "attacker" ? AttackRole::kAttacker
             : r->role == "scorer" ? AttackRole::kScorer
                                   : AttackRole::kTarget;
    e.request_hash = r->request_hash;
    e.response = r->response;
    e.usage = {r->prompt_tokens, r->completion_tokens};
    return std::optional<JournalEntry>(std::move(e));
  }
  Status Record(const std::string& attack, int64_t seq, const JournalEntry& e) override {
    std::lock_guard<std::mutex> lock(*mu_);
    return store_->PutAttackCall({attack, seq, AttackRoleName(e.role), e.request_hash, e.response,
                                  e.usage.prompt_tokens, e.usage.completion_tokens});
  }

 private:
  Store* store_;
  std::mutex* mu_;
};

json TurnJson(const AttackTurn& t) {
  return {{"index", t.index},
          {"attacker", t.attacker},
          {"sent", t.sent},
          {"reply", t.reply},
          {"score", t.score},
          {"reason", t.reason},
          {"backtracked", t.backtracked},
          {"pruned", t.pruned},
          {"branch", t.branch}};
}

json ConversationJson(const std::vector<Message>& messages) {
  json out = json::array();
  for (const Message& m : messages)
    out.push_back({{"role", RoleName(m.role)}, {"content", m.content}});
  return out;
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

Result<CampaignResult> RunCampaign(const CampaignConfig& config, Store* store,
                                   CampaignModels* models, const CampaignProgressFn& progress,
                                   const std::atomic<bool>* stop) {
  BF_ASSIGN_OR_RETURN(std::vector<Objective> objectives, LoadCampaignObjectives(config));
  const std::vector<PlannedAttack> plan = PlanCampaign(config, objectives);

  // Models and converter chains, built once.
  bool needs_attacker = false;
  for (const std::string& s : config.strategies) needs_attacker |= UsesAttacker(s);
  ChatModel* attacker = nullptr;
  if (needs_attacker) {
    BF_ASSIGN_OR_RETURN(attacker, models->Model(config.attacker));
  }
  BF_ASSIGN_OR_RETURN(ChatModel * scorer, models->Model(config.scorer));
  ChatModel* converter_model = attacker;
  if (!config.converter_model.empty()) {
    BF_ASSIGN_OR_RETURN(converter_model, models->Model(config.converter_model));
  }
  std::map<std::string, ChatModel*> targets;
  for (const std::string& t : config.targets) {
    BF_ASSIGN_OR_RETURN(targets[t], models->Model(t));
  }
  std::vector<ConverterChain> chains;
  for (const std::vector<std::string>& specs : config.converters) {
    BF_ASSIGN_OR_RETURN(ConverterChain chain, ConverterChain::FromSpecs(specs, converter_model));
    chains.push_back(std::move(chain));
  }
  std::map<std::string, std::unique_ptr<Strategy>> strategies;
  for (const std::string& s : config.strategies) {
    BF_ASSIGN_OR_RETURN(strategies[s], MakeStrategy(s));
  }

  std::mutex store_mu, state_mu;
  StoreJournal journal(store, &store_mu);
  CampaignResult result;
  result.progress.total = static_cast<int64_t>(plan.size());
  std::atomic<size_t> next{0};

  auto run_one = [&](const PlannedAttack& p) -> Status {
    ChatModel* target = targets.at(p.target);
    const ConverterChain& chain = chains[p.converter_chain];
    const AttackSettings& s = config.settings;
    KeyBuilder k;
    k.Add("attack/v1").Add(config.name).Add(p.objective.id).Add(p.objective.goal);
    k.Add(p.objective.context).Add(p.objective.success_marker).Add(p.strategy);
    k.Add(chain.Identity()).Add(target->Identity());
    k.Add(p.uses_persona ? AttackerPersonaName(p.persona) : "-");
    k.Add(attacker != nullptr && UsesAttacker(p.strategy) ? attacker->Identity() : "-");
    k.Add(scorer->Identity());
    for (int64_t v :
         {int64_t{s.success_threshold}, int64_t{s.max_turns}, int64_t{s.max_backtracks},
          int64_t{s.width}, int64_t{s.branching}, int64_t{s.shots}, int64_t{s.max_tokens}}) {
      k.Add(v);
    }
    k.Add(s.target_temperature).Add(static_cast<int64_t>(config.seed));
    const std::string key = k.Hex();
    {
      std::lock_guard<std::mutex> lock(store_mu);
      BF_ASSIGN_OR_RETURN(std::optional<AttackRecord> done, store->FindAttack(key));
      if (done) {
        std::lock_guard<std::mutex> state(state_mu);
        ++result.progress.done;
        ++result.progress.resumed;
        result.progress.succeeded += done->outcome == AttackOutcomeName(AttackOutcome::kSucceeded);
        return Status::OK();
      }
    }
    AttackContext context;
    context.objective = p.objective;
    context.settings = s;
    context.settings.persona = p.persona;
    context.converters = &chain;
    context.seed = std::stoull(key.substr(0, 15), nullptr, 16);
    AttackCalls calls(key, &journal, attacker, target, scorer);
    Result<AttackResult> r = strategies.at(p.strategy)->Run(context, calls);
    {
      std::lock_guard<std::mutex> state(state_mu);
      result.progress.calls_replayed += calls.replayed();
      result.progress.calls_made += calls.fresh();
    }
    if (!r.ok()) return r.status();

    json usage = json::object();
    for (const auto& [role, u] : calls.usage()) {
      usage[AttackRoleName(role)] = {{"prompt_tokens", u.prompt_tokens},
                                     {"completion_tokens", u.completion_tokens}};
    }
    json turns = json::array();
    for (const AttackTurn& t : r->turns) turns.push_back(TurnJson(t));
    json detail = {
        {"objective",
         {{"id", p.objective.id},
          {"goal", p.objective.goal},
          {"category", p.objective.category},
          {"source", p.objective.source},
          {"context", p.objective.context},
          {"success_marker", p.objective.success_marker}}},
        {"strategy", p.strategy},
        {"converters", chain.Identity()},
        {"converter_label", chain.Label()},
        {"target",
         {{"spec", p.target}, {"name", target->name()}, {"identity", target->Identity()}}},
        {"attacker", attacker != nullptr && UsesAttacker(p.strategy) ? attacker->Identity() : ""},
        {"scorer", scorer->Identity()},
        {"persona", p.uses_persona ? AttackerPersonaName(p.persona) : ""},
        {"seed", context.seed},
        {"outcome", AttackOutcomeName(r->outcome)},
        {"best_score", r->best_score},
        {"turns_to_success", r->turns_to_success},
        {"backtracks", r->backtracks},
        {"note", r->note},
        {"turns", turns},
        {"conversation", ConversationJson(r->conversation)},
        {"usage", usage},
    };
    AttackRecord record;
    record.key = key;
    record.campaign = config.name;
    record.position = p.position;
    record.objective_id = p.objective.id;
    record.category = p.objective.category;
    record.strategy = p.strategy;
    record.converters = chain.Label();
    record.target = target->name();
    record.persona = p.uses_persona ? AttackerPersonaName(p.persona) : "";
    record.seed = static_cast<int64_t>(context.seed);
    record.outcome = AttackOutcomeName(r->outcome);
    record.best_score = r->best_score;
    record.turns_to_success = r->turns_to_success;
    record.backtracks = r->backtracks;
    record.result_json = Dump(detail);
    {
      std::lock_guard<std::mutex> lock(store_mu);
      BF_RETURN_IF_ERROR(store->PutAttack(record));
    }
    std::lock_guard<std::mutex> state(state_mu);
    ++result.progress.done;
    result.progress.succeeded += r->outcome == AttackOutcome::kSucceeded;
    return Status::OK();
  };

  auto worker = [&] {
    while (stop == nullptr || !stop->load()) {
      const size_t i = next.fetch_add(1);
      if (i >= plan.size()) return;
      Status s = run_one(plan[i]);
      CampaignProgress snapshot;
      {
        std::lock_guard<std::mutex> state(state_mu);
        if (!s.ok()) {
          ++result.progress.failed;
          result.errors.push_back(plan[i].objective.id + " / " + plan[i].strategy + " / " +
                                  plan[i].target + ": " + s.ToString());
        }
        snapshot = result.progress;
      }
      if (progress) progress(snapshot);
    }
  };
  const int n = std::max(1, std::min<int>(config.concurrency, static_cast<int>(plan.size())));
  std::vector<std::thread> threads;
  for (int i = 1; i < n; ++i) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  result.interrupted = stop != nullptr && stop->load() &&
                       result.progress.done + result.progress.failed < result.progress.total;
  return result;
}

}  // namespace breakfix
