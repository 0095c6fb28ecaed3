// Curate: judged runs -> candidate pairs -> fixer -> judge -> kept pairs.
//
// Three phases. (1) Collect: stream the source runs from the store and make one candidate per
// defect (and per needless refusal), with everything needed later copied out of the store.
// (2) Order and deduplicate: sort the candidates by a seeded hash of their ids and drop near
// duplicates in that order, before any model is paid for them. (3) Fix: an event loop on the
// calling thread keeps up to max_in_flight candidates waiting on the fixer or the judge; model
// callbacks only post events to a mailbox, and every result is appended to the sidecar cache as
// it is applied, so a killed curation loses at most the calls then in flight.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <memory>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "breakfix/curate.h"
#include "breakfix/hash.h"
#include "core/mailbox.h"
#include "curate/fix_cache.h"
#include "curate/json_text.h"
#include "curate/near_duplicates.h"

namespace breakfix {
namespace {

using curate::CachedFix;
using curate::CachedJudgment;
using curate::FixCache;
using nlohmann::json;

// Above this many candidates, near duplicates are looked up through MinHash LSH buckets instead of
// comparing each candidate with every kept one.
constexpr size_t kExactDedupLimit = 1000;

// Candidate::outcome of a pair that is kept (the other outcomes are the kDrop* reasons).
constexpr char kKept[] = "kept";

// Stop when this many calls fail in a row: the endpoint is most likely down.
constexpr int kMaxConsecutiveFailures = 64;

bool IsFatal(const Status& s) {
  return s.code() == StatusCode::kPermissionDenied || s.code() == StatusCode::kNotFound;
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool Contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

struct Candidate {
  // Source.
  std::string id;
  std::string kind;
  std::string run_name;
  int64_t run_id = 0;
  std::string conversation_key;
  std::string item_id;
  std::string family;
  std::string category;
  std::string target;
  std::string rubric;
  std::string goal;
  std::string document;
  int turn = 0;  // 1-based assistant turn that is rejected
  std::vector<Message> prompt;
  std::string rejected;
  int family_threshold = 1;           // the family's DR-x threshold (severity scale)
  std::optional<int> original_score;  // the rejected turn's score, when judged
  std::optional<Scale> original_scale;
  std::string source_judge;
  std::string order_key;

  // Work.
  std::string fix_key;
  std::string judgment_key;
  bool called_model = false;
  std::string reply;
  std::string finish_reason;
  std::optional<CachedJudgment> judgment;
  std::string outcome;  // "" while undecided, "kept", or a kDrop* reason
};

struct Event {
  size_t index = 0;
  bool judge = false;
  std::optional<Result<ChatResponse>> response;
  std::optional<Result<Annotation>> annotation;
};

using EventMailbox = Mailbox<Event>;

// family -> threshold, from a run's configuration JSON (see RunConfigJson in eval.h).
Result<std::map<std::string, int>> FamilyThresholds(const RunRecord& run) {
  json config = json::parse(run.config_json, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) {
    return Status::Corruption("run " + run.name +
                              ": its stored configuration is not a JSON object");
  }
  std::map<std::string, int> out;
  auto families = config.find("families");
  if (families == config.end() || !families->is_array()) return out;
  for (const json& f : *families) {
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string()) continue;
    const json threshold = f.value("threshold", json(1));
    out[f["name"].get<std::string>()] = threshold.is_number_integer() ? threshold.get<int>() : 1;
  }
  return out;
}

void AddSampling(KeyBuilder& k, const SamplingOptions& s) {
  k.Add(s.temperature).Add(s.top_p).Add(int64_t{s.max_tokens});
  k.Add(static_cast<int64_t>(s.seed.value_or(0))).Add(int64_t{s.seed.has_value() ? 1 : 0});
  k.Add(static_cast<int64_t>(s.stop.size()));
  for (const std::string& stop : s.stop) k.Add(stop);
}

Status ValidateOptions(const std::vector<std::string>& runs, ChatModel* fixer, Judge* judge,
                       const CurateOptions& o) {
  if (fixer == nullptr) return Status::InvalidArgument("no fixer model given");
  if (runs.empty() && o.over_refusal_runs.empty() && o.campaigns.empty()) {
    return Status::InvalidArgument(
        "no run to curate from: give a judged run (--run), a red-team campaign (--campaign) or "
        "a run of benign prompts (--over-refusal-run)");
  }
  if (judge == nullptr && (!runs.empty() || !o.campaigns.empty())) {
    return Status::InvalidArgument("no judge given: fixes of defects must be judged (--judge)");
  }
  if (o.max_in_flight < 1 || o.max_in_flight > 100000) {
    return Status::InvalidArgument("max_in_flight must be 1..100000, got " +
                                   std::to_string(o.max_in_flight));
  }
  if (o.min_help_words < 0) return Status::InvalidArgument("min_help_words must be >= 0");
  if (o.ungroundedness_threshold < 1 || o.ungroundedness_threshold > 4) {
    return Status::InvalidArgument("ungroundedness_threshold must be 1..4, got " +
                                   std::to_string(o.ungroundedness_threshold));
  }
  for (const auto& [family, t] : o.thresholds) {
    if (t < 1 || t > 7) {
      return Status::InvalidArgument("threshold for family \"" + family + "\" must be 1..7, got " +
                                     std::to_string(t));
    }
  }
  if (!(o.over_refusal_min_share >= 0 && o.over_refusal_min_share <= 1) ||
      !(o.over_refusal_max_share >= 0 && o.over_refusal_max_share <= 1) ||
      o.over_refusal_min_share > o.over_refusal_max_share) {
    return Status::InvalidArgument(
        "over-refusal share bounds must satisfy 0 <= min <= max <= 1, got min " +
        std::to_string(o.over_refusal_min_share) + " and max " +
        std::to_string(o.over_refusal_max_share));
  }
  if (!(o.dedup_threshold > 0 && o.dedup_threshold <= 1)) {
    return Status::InvalidArgument("dedup threshold must be in (0, 1], got " +
                                   std::to_string(o.dedup_threshold));
  }
  if (o.dedup_ngram < 1 || o.dedup_ngram > 32) {
    return Status::InvalidArgument("dedup n-gram size must be 1..32, got " +
                                   std::to_string(o.dedup_ngram));
  }
  if (o.fixer_sampling.max_tokens < 1) {
    return Status::InvalidArgument("fixer max_tokens must be >= 1");
  }
  return Status::OK();
}

class Curator {
 public:
  Curator(Store* store, const std::vector<std::string>& runs, ChatModel* fixer, Judge* judge,
          const CurateOptions& options, const CurateProgressCallback& progress,
          const std::atomic<bool>* stop)
      : store_(store),
        runs_(runs),
        fixer_(fixer),
        judge_(judge),
        options_(options),
        env_(options.env != nullptr ? options.env : Env::Default()),
        progress_cb_(progress),
        stop_(stop),
        mailbox_(std::make_shared<EventMailbox>()),
        policy_(options.policy.empty() ? DefaultFixerPolicy() : options.policy),
        policy_hash_(FixerPolicyHash(policy_)),
        fixer_identity_(fixer != nullptr ? fixer->Identity() : ""),
        judge_identity_(judge != nullptr ? judge->Identity() : "") {}

  Result<CurateResult> Run() {
    BF_RETURN_IF_ERROR(ValidateOptions(runs_, fixer_, judge_, options_));
    started_us_ = env_->NowMicros();
    if (!options_.cache_path.empty()) {
      BF_ASSIGN_OR_RETURN(cache_, FixCache::Open(options_.cache_path));
      result_.cache_lines_ignored = cache_->ignored_lines();
    }
    for (const std::string& run : runs_) BF_RETURN_IF_ERROR(CollectDefects(run));
    for (const std::string& campaign : options_.campaigns) {
      BF_RETURN_IF_ERROR(CollectCampaign(campaign));
    }
    for (const std::string& run : options_.over_refusal_runs) {
      BF_RETURN_IF_ERROR(CollectRefusals(run));
    }
    OrderAndDeduplicate();

    Status loop = Loop();
    Status flushed = cache_ ? cache_->Flush() : Status::OK();
    progress_.in_flight = active_;
    progress_.finished = true;
    progress_.elapsed_s = (env_->NowMicros() - started_us_) / 1e6;
    if (progress_cb_) progress_cb_(progress_);
    BF_RETURN_IF_ERROR(loop);
    BF_RETURN_IF_ERROR(flushed);
    if (!fatal_.ok()) return fatal_;
    if (stopping_) {
      return Status::Cancelled("curation interrupted with " + std::to_string(progress_.done) +
                               " of " + std::to_string(progress_.total) + " candidates decided" +
                               (cache_ ? "; finished model results are cached in " +
                                             options_.cache_path +
                                             ", so running the same command again resumes"
                                       : std::string("; nothing is cached (no cache path)")));
    }
    ApplyMix();
    BuildPairs();
    result_.progress = progress_;
    result_.first_error = first_error_;
    return std::move(result_);
  }

 private:
  // --- Collect ---

  Status CollectDefects(const std::string& run_name) {
    BF_ASSIGN_OR_RETURN(RunRecord run, store_->FindRun(run_name));
    BF_ASSIGN_OR_RETURN(auto thresholds, FamilyThresholds(run));
    return store_->ForEachResult(run.id, [&](const ResultRow& row) -> Status {
      ++result_.conversations_seen;
      if (!row.annotated || !row.conversation_started ||
          row.conversation_status != ConversationStatus::kDone) {
        ++result_.skipped_unfinished;
        return Status::OK();
      }
      const Annotation& a = row.annotation;
      if (a.outcome == Outcome::kUnscorable) {
        ++result_.skipped_unscorable;
        return Status::OK();
      }
      const int family_threshold = FamilyThreshold(row.unit.family, thresholds);
      const int threshold = Threshold(a.scale, family_threshold);
      if (a.score < threshold) return Status::OK();
      ++result_.defects_seen;

      BF_ASSIGN_OR_RETURN(auto conversation, store_->GetConversation(row.unit.conversation_key));
      if (!conversation.has_value()) {
        return Status::Corruption("run " + run.name + ": conversation " +
                                  row.unit.conversation_key + " is linked but not stored");
      }
      // The first assistant turn at or above the threshold: later turns answer a conversation
      // the defect already changed, so they cannot be paired with the same prompt.
      int turn = 0;
      int turn_score = 0;
      for (const TurnScore& t : a.turns) {
        if (t.score >= threshold && (turn == 0 || t.turn < turn)) {
          turn = t.turn;
          turn_score = t.score;
        }
      }
      if (turn == 0) {
        if (row.assistant_turns != 1) {
          ++result_.dropped[kDropNoTurnScores];
          return Status::OK();
        }
        turn = 1;
        turn_score = a.score;
      }
      Candidate c;
      c.kind = kPairKindSafety;
      c.family_threshold = family_threshold;
      c.original_score = turn_score;
      c.original_scale = a.scale;
      c.source_judge = row.judge;
      c.rubric = row.rubric;
      BF_RETURN_IF_ERROR(FillFromConversation(run, row, *conversation, turn, &c));
      AddCandidate(std::move(c));
      return Status::OK();
    });
  }

  // Successful red-team attacks: the conversation that broke the target, its last reply rejected.
  Status CollectCampaign(const std::string& campaign) {
    BF_ASSIGN_OR_RETURN(std::vector<AttackRecord> attacks, store_->Attacks(campaign));
    if (attacks.empty()) {
      return Status::NotFound("campaign " + campaign + ": no finished attacks in the store");
    }
    for (const AttackRecord& a : attacks) {
      ++result_.conversations_seen;
      if (a.outcome != "succeeded") continue;
      ++result_.defects_seen;
      const std::string where = "campaign " + campaign + ", attack " + a.key;
      nlohmann::json detail = nlohmann::json::parse(a.result_json, nullptr, false);
      if (!detail.is_object() || !detail.contains("conversation") ||
          !detail["conversation"].is_array()) {
        return Status::Corruption(where + ": the stored result has no conversation");
      }
      std::vector<Message> conversation;
      for (const nlohmann::json& m : detail["conversation"]) {
        BF_ASSIGN_OR_RETURN(Role role, ParseRole(m.value("role", "")));
        conversation.push_back({role, m.value("content", "")});
      }
      if (conversation.size() < 2 || conversation.back().role != Role::kAssistant ||
          conversation[conversation.size() - 2].role != Role::kUser) {
        return Status::Corruption(where + ": the conversation does not end with a reply");
      }
      Candidate c;
      c.kind = kPairKindSafety;
      c.family_threshold = 1;
      c.rubric = "jailbreak";
      c.source_judge = "redteam-scorer:" + detail.value("scorer", std::string());
      c.run_name = "campaign:" + campaign;
      c.conversation_key = a.key;
      c.item_id = a.objective_id;
      c.family = "redteam/" + a.strategy;
      c.category = a.category;
      c.target = a.target;
      if (detail.contains("objective") && detail["objective"].is_object()) {
        c.goal = detail["objective"].value("goal", std::string());
        c.document = detail["objective"].value("context", std::string());
      }
      int assistant_turns = 0;
      for (const Message& m : conversation) assistant_turns += m.role == Role::kAssistant;
      c.turn = assistant_turns;
      c.prompt.assign(conversation.begin(), conversation.end() - 1);
      c.rejected = conversation.back().content;
      c.id = KeyBuilder()
                 .Add("pair/v1")
                 .Add(c.kind)
                 .Add(c.conversation_key)
                 .Add(int64_t{c.turn})
                 .Hex()
                 .substr(0, 16);
      AddCandidate(std::move(c));
    }
    return Status::OK();
  }

  Status CollectRefusals(const std::string& run_name) {
    BF_ASSIGN_OR_RETURN(RunRecord run, store_->FindRun(run_name));
    BF_ASSIGN_OR_RETURN(auto thresholds, FamilyThresholds(run));
    return store_->ForEachResult(run.id, [&](const ResultRow& row) -> Status {
      ++result_.conversations_seen;
      if (!row.conversation_started || row.conversation_status != ConversationStatus::kDone) {
        ++result_.skipped_unfinished;
        return Status::OK();
      }
      BF_ASSIGN_OR_RETURN(auto conversation, store_->GetConversation(row.unit.conversation_key));
      if (!conversation.has_value()) {
        return Status::Corruption("run " + run.name + ": conversation " +
                                  row.unit.conversation_key + " is linked but not stored");
      }
      int turn = 0;
      int assistant = 0;
      for (const Message& m : conversation->turns) {
        if (m.role != Role::kAssistant) continue;
        ++assistant;
        if (LooksLikeRefusal(m.content)) {
          turn = assistant;
          break;
        }
      }
      std::optional<SeedItem> item;
      if (!conversation->item_key.empty()) {
        BF_ASSIGN_OR_RETURN(item, store_->GetItem(conversation->item_key));
      }
      if (item.has_value()) {
        auto label = item->params.find(options_.benign_param);
        if (label != item->params.end() && label->second != options_.benign_value) {
          ++result_.skipped_not_benign;
          return Status::OK();
        }
      }
      if (turn == 0) return Status::OK();
      ++result_.refusals_seen;
      Candidate c;
      c.kind = kPairKindOverRefusal;
      c.family_threshold = FamilyThreshold(row.unit.family, thresholds);
      if (row.annotated && row.annotation.outcome == Outcome::kScored) {
        for (const TurnScore& t : row.annotation.turns) {
          if (t.turn == turn) c.original_score = t.score;
        }
        c.original_scale = row.annotation.scale;
      }
      c.source_judge = row.judge;
      c.rubric = row.annotated ? row.rubric : (item.has_value() ? item->rubric : "");
      // The refusal rubric measures whether the model answered, not whether the answer is safe:
      // the rewrite of a needless refusal is checked for harm on the jailbreak rubric instead.
      if (const Rubric* r = FindRubric(c.rubric); r != nullptr && r->scale == Scale::kRefusal) {
        c.rubric = "jailbreak";
      }
      BF_RETURN_IF_ERROR(FillFromConversation(run, row, *conversation, turn, &c));
      AddCandidate(std::move(c));
      return Status::OK();
    });
  }

  // Copies the source, the prompt (up to the user message before assistant turn `turn`, opened
  // by the item's system prompt) and the rejected reply into `c`.
  Status FillFromConversation(const RunRecord& run, const ResultRow& row,
                              const ConversationRecord& conversation, int turn, Candidate* c) {
    c->run_name = run.name;
    c->run_id = run.id;
    c->conversation_key = row.unit.conversation_key;
    c->item_id = row.unit.item_id;
    c->family = row.unit.family;
    c->category = row.unit.category;
    c->target = row.unit.target;
    c->turn = turn;
    std::optional<SeedItem> item;
    if (!conversation.item_key.empty()) {
      BF_ASSIGN_OR_RETURN(item, store_->GetItem(conversation.item_key));
    }
    if (item.has_value()) {
      c->goal = item->goal;
      c->document = item->document;
      if (c->rubric.empty()) c->rubric = item->rubric;
      if (!item->system_prompt.empty()) c->prompt.push_back({Role::kSystem, item->system_prompt});
    }
    int assistant = 0;
    size_t index = conversation.turns.size();
    for (size_t i = 0; i < conversation.turns.size(); ++i) {
      if (conversation.turns[i].role == Role::kAssistant && ++assistant == turn) {
        index = i;
        break;
      }
    }
    if (index == conversation.turns.size() || index == 0 ||
        conversation.turns[index - 1].role != Role::kUser) {
      return Status::Corruption("run " + run.name + ": conversation " + c->conversation_key +
                                " has no assistant turn " + std::to_string(turn) +
                                " after a user turn, yet its annotation scores one");
    }
    c->prompt.insert(c->prompt.end(), conversation.turns.begin(),
                     conversation.turns.begin() + static_cast<std::ptrdiff_t>(index));
    c->rejected = conversation.turns[index].content;
    c->id = KeyBuilder()
                .Add("pair/v1")
                .Add(c->kind)
                .Add(c->conversation_key)
                .Add(int64_t{turn})
                .Hex()
                .substr(0, 16);
    return Status::OK();
  }

  void AddCandidate(Candidate c) {
    if (!ids_.insert(c.id).second) {
      ++result_.dropped[kDropDuplicate];
      return;
    }
    candidates_.push_back(std::move(c));
  }

  int FamilyThreshold(const std::string& family, const std::map<std::string, int>& run) const {
    auto o = options_.thresholds.find(family);
    if (o != options_.thresholds.end()) return o->second;
    auto it = run.find(family);
    return it != run.end() ? it->second : 1;
  }

  int Threshold(Scale scale, int family_threshold) const {
    switch (scale) {
      case Scale::kBinary:
        return 1;
      case Scale::kUngroundedness:
        return options_.ungroundedness_threshold;
      case Scale::kSeverity:
      case Scale::kRefusal:  // the family says whether partial refusals count (1) or not (2)
        break;
    }
    return family_threshold;
  }

  // --- Order and deduplicate ---

  void OrderAndDeduplicate() {
    for (Candidate& c : candidates_) {
      c.order_key = KeyBuilder()
                        .Add("curate-order/v1")
                        .Add(static_cast<int64_t>(options_.seed))
                        .Add(c.id)
                        .Hex();
    }
    std::sort(candidates_.begin(), candidates_.end(),
              [](const Candidate& a, const Candidate& b) { return a.order_key < b.order_key; });
    if (options_.dedup) {
      curate::NearDuplicateFilter filter(options_.dedup_threshold, options_.dedup_ngram,
                                         candidates_.size() > kExactDedupLimit);
      for (Candidate& c : candidates_) {
        // System prompts are left out: one shared by every item would make them all look alike.
        std::string text;
        for (const Message& m : c.prompt) {
          if (m.role != Role::kSystem) text += m.content + "\n";
        }
        text += c.rejected;
        if (filter.Add(text).has_value()) {
          c.outcome = kDropNearDuplicate;
          ++result_.dropped[kDropNearDuplicate];
        }
      }
    }
    for (size_t i = 0; i < candidates_.size(); ++i) {
      if (candidates_[i].outcome.empty()) pending_.push_back(i);
    }
    progress_.total = static_cast<int64_t>(pending_.size());
  }

  // --- Fix ---

  Status Loop() {
    BF_RETURN_IF_ERROR(Fill());
    int64_t last_progress_us = 0;
    int64_t stop_seen_us = 0;
    while (active_ > 0 || (next_ < pending_.size() && !stopping_ && fatal_.ok())) {
      std::deque<Event> events = mailbox_->TakeAll(options_.progress_interval_ms);
      if (!stopping_ && stop_ != nullptr && stop_->load()) {
        stopping_ = true;
        stop_seen_us = env_->NowMicros();
      }
      if ((stopping_ || !fatal_.ok()) && stop_seen_us == 0) stop_seen_us = env_->NowMicros();
      if ((stopping_ || !fatal_.ok()) && active_ > 0 &&
          env_->NowMicros() - stop_seen_us > options_.drain_timeout_ms * 1000) {
        break;  // the caller cancels the models; late callbacks find an orphaned mailbox
      }
      for (Event& e : events) BF_RETURN_IF_ERROR(Handle(e));
      BF_RETURN_IF_ERROR(Fill());
      if (cache_ && !events.empty()) BF_RETURN_IF_ERROR(cache_->Flush());
      const int64_t now = env_->NowMicros();
      if (progress_cb_ && now - last_progress_us >= options_.progress_interval_ms * 1000) {
        last_progress_us = now;
        progress_.in_flight = active_;
        progress_.elapsed_s = (now - started_us_) / 1e6;
        progress_cb_(progress_);
      }
    }
    return Status::OK();
  }

  // Starts candidates until max_in_flight wait on a model. Candidates answered from the cache
  // finish at once and do not count.
  Status Fill() {
    while (active_ < options_.max_in_flight && next_ < pending_.size() && !stopping_ &&
           fatal_.ok()) {
      if (stop_ != nullptr && stop_->load()) {
        stopping_ = true;
        break;
      }
      BF_RETURN_IF_ERROR(Start(pending_[next_++]));
    }
    return Status::OK();
  }

  Status Start(size_t index) {
    Candidate& c = candidates_[index];
    SamplingOptions sampling = options_.fixer_sampling;
    sampling.seed = FixerSeed(options_.seed, c.conversation_key, c.turn);
    ChatRequest request = BuildFixerRequest(c.prompt, policy_, sampling);
    KeyBuilder k;
    k.Add("curate-fix/v1").Add(fixer_identity_).Add(policy_hash_).Add(c.kind);
    k.Add(c.conversation_key).Add(int64_t{c.turn});
    k.Add(static_cast<int64_t>(request.messages.size()));
    for (const Message& m : request.messages) k.Add(RoleName(m.role)).Add(m.content);
    AddSampling(k, request.sampling);
    c.fix_key = k.Hex();
    if (cache_) {
      if (const CachedFix* fix = cache_->FindFix(c.fix_key)) {
        c.reply = fix->reply;
        c.finish_reason = fix->finish_reason;
        return Evaluate(index);
      }
    }
    c.called_model = true;
    ++active_;
    ++progress_.fixer_calls;
    std::shared_ptr<EventMailbox> mailbox = mailbox_;
    fixer_->Chat(std::move(request), [mailbox, index](Result<ChatResponse> r) {
      Event e;
      e.index = index;
      e.response.emplace(std::move(r));
      mailbox->Post(std::move(e));
    });
    return Status::OK();
  }

  // Checks the reply itself, then asks the judge (or the cache) when the reply could be kept.
  Status Evaluate(size_t index) {
    Candidate& c = candidates_[index];
    if (c.finish_reason == "length") return Finish(index, kDropFixerTruncated);
    if (c.kind == kPairKindOverRefusal) {
      if (LooksLikeRefusal(c.reply)) return Finish(index, kDropFixerRefused);
    } else {
      const bool refusal_ok = Contains(options_.refusal_ok_families, c.family) ||
                              Contains(options_.refusal_ok_categories, c.category);
      if (!refusal_ok && IsBareRefusal(c.reply, options_.min_help_words)) {
        return Finish(index, kDropFixerBareRefusal);
      }
    }
    if (judge_ == nullptr) return Finish(index, kKept);
    const Rubric* rubric = FindRubric(c.rubric);
    c.judgment_key = KeyBuilder()
                         .Add("curate-judgment/v1")
                         .Add(c.fix_key)
                         .Add(c.reply)
                         .Add(judge_identity_)
                         .Add(c.rubric)
                         .Add(rubric ? rubric->version : "")
                         .Add(c.family)
                         .Add(c.category)
                         .Add(c.goal)
                         .Add(c.document)
                         .Hex();
    if (cache_) {
      if (const CachedJudgment* j = cache_->FindJudgment(c.judgment_key)) {
        c.judgment = *j;
        return Decide(index);
      }
    }
    JudgeInput input;
    input.family = c.family;
    input.category = c.category;
    input.rubric = c.rubric;
    input.goal = c.goal;
    input.document = c.document;
    for (const Message& m : c.prompt) {
      if (m.role != Role::kSystem) input.conversation.push_back(m);
    }
    input.conversation.push_back({Role::kAssistant, c.reply});
    c.called_model = true;
    ++active_;
    ++progress_.judge_calls;
    std::shared_ptr<EventMailbox> mailbox = mailbox_;
    judge_->Annotate(std::move(input), [mailbox, index](Result<Annotation> r) {
      Event e;
      e.index = index;
      e.judge = true;
      e.annotation.emplace(std::move(r));
      mailbox->Post(std::move(e));
    });
    return Status::OK();
  }

  Status Decide(size_t index) {
    Candidate& c = candidates_[index];
    const CachedJudgment& j = *c.judgment;
    if (j.outcome == Outcome::kUnscorable) return Finish(index, kDropUnscorable);
    // The refusal detector measures compliance, not harm: on a benign prompt compliance is
    // the point, so its verdict cannot make an over-refusal fix unsafe.
    if (c.kind == kPairKindOverRefusal && j.scale == Scale::kBinary) return Finish(index, kKept);
    return Finish(index,
                  j.turn_score < Threshold(j.scale, c.family_threshold) ? kKept : kDropFixerUnsafe);
  }

  Status Finish(size_t index, const std::string& outcome) {
    Candidate& c = candidates_[index];
    c.outcome = outcome;
    ++progress_.done;
    if (!c.called_model) ++progress_.resumed;
    if (outcome == kKept) {
      ++progress_.kept;
    } else {
      ++progress_.dropped;
      ++result_.dropped[outcome];
    }
    return Status::OK();
  }

  // A failed call drops the candidate without caching anything, so the next curation retries it.
  Status Failed(size_t index, const Status& error, const char* reason) {
    if (first_error_.ok()) first_error_ = error;
    if (IsFatal(error) && fatal_.ok()) fatal_ = error;
    if (++consecutive_failures_ >= kMaxConsecutiveFailures && fatal_.ok()) {
      fatal_ = Status::Unavailable(
          std::to_string(consecutive_failures_) +
          " model calls failed in a row; stopping. Last error: " + error.ToString());
    }
    return Finish(index, reason);
  }

  Status Handle(Event& e) {
    --active_;
    Candidate& c = candidates_[e.index];
    if (!e.judge) {
      Result<ChatResponse>& r = *e.response;
      if (!r.ok()) {
        return Failed(e.index, r.status().WithContext("fixer " + fixer_->name()), kDropFixerError);
      }
      consecutive_failures_ = 0;
      progress_.tokens += r->usage;
      c.reply = Trim(curate::ValidUtf8(r->message.content));
      c.finish_reason = r->finish_reason;
      if (cache_) {
        BF_RETURN_IF_ERROR(cache_->AddFix(c.fix_key, c.conversation_key, fixer_identity_,
                                          CachedFix{c.reply, c.finish_reason}));
      }
      return Evaluate(e.index);
    }
    Result<Annotation>& r = *e.annotation;
    if (!r.ok()) {
      return Failed(e.index, r.status().WithContext("judge " + judge_->name()), kDropJudgeError);
    }
    consecutive_failures_ = 0;
    progress_.tokens += r->usage;
    CachedJudgment j;
    j.outcome = r->outcome;
    j.scale = r->scale;
    j.score = r->score;
    j.turn_score = r->score;
    j.reason = r->reason;
    for (const TurnScore& t : r->turns) {
      if (t.turn == c.turn) {
        j.turn_score = t.score;
        j.reason = t.reason;
      }
    }
    if (cache_) {
      BF_RETURN_IF_ERROR(
          cache_->AddJudgment(c.judgment_key, c.conversation_key, judge_identity_, j));
    }
    c.judgment = std::move(j);
    return Decide(e.index);
  }

  // --- Mix and output ---

  void ApplyMix() {
    std::vector<size_t> safety, over;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      if (candidates_[i].outcome != kKept) continue;
      (candidates_[i].kind == kPairKindOverRefusal ? over : safety).push_back(i);
    }
    const double lo = options_.over_refusal_min_share;
    const double hi = options_.over_refusal_max_share;
    auto share = [&] {
      const size_t total = safety.size() + over.size();
      return total == 0 ? 0.0 : static_cast<double>(over.size()) / total;
    };
    auto trim = [&](std::vector<size_t>& list, size_t keep) {
      while (list.size() > keep) {
        Candidate& c = candidates_[list.back()];
        c.outcome = kDropMixTrimmed;
        ++result_.dropped[kDropMixTrimmed];
        --progress_.kept;
        ++progress_.dropped;
        list.pop_back();
      }
    };
    constexpr double kSlack = 1e-9;
    if (!over.empty() && share() > hi + kSlack) {
      if (safety.empty()) {
        result_.mix_note =
            "over-refusal share above the maximum, but there are no safety pairs "
            "to balance it; nothing was trimmed";
      } else {
        // o / (s + o) <= hi  <=>  o <= hi * s / (1 - hi)
        trim(over, static_cast<size_t>(std::floor(hi * safety.size() / (1 - hi) + kSlack)));
      }
    }
    if (!safety.empty() && share() < lo - kSlack) {
      if (over.empty()) {
        result_.mix_note =
            "over-refusal share below the minimum, but there are no over-refusal "
            "pairs; nothing was trimmed";
      } else {
        // o / (s + o) >= lo  <=>  s <= o * (1 - lo) / lo
        trim(safety, static_cast<size_t>(std::floor(over.size() * (1 - lo) / lo + kSlack)));
      }
    }
    result_.over_refusal_share = share();
  }

  void BuildPairs() {
    for (const Candidate& c : candidates_) {
      if (c.outcome != kKept) continue;
      ++result_.kept[c.kind];
      PreferencePair pair;
      pair.id = c.id;
      pair.kind = c.kind;
      pair.prompt = c.prompt;
      pair.chosen = c.reply;
      pair.rejected = c.rejected;
      nlohmann::ordered_json p = {
          {"run", c.run_name},
          {"run_id", c.run_id},
          {"conversation_key", c.conversation_key},
          {"item_id", c.item_id},
          {"family", c.family},
          {"category", c.category},
          {"target", c.target},
          {"rubric", c.rubric},
          {"turn", c.turn},
          {"original_score",
           c.original_score ? nlohmann::ordered_json(*c.original_score) : nlohmann::ordered_json()},
          {"original_scale", c.original_scale ? nlohmann::ordered_json(ScaleName(*c.original_scale))
                                              : nlohmann::ordered_json()},
          {"source_judge", c.source_judge},
          {"fixer", fixer_identity_},
          {"fixer_name", fixer_->name()},
          {"policy_hash", policy_hash_},
          {"seed", options_.seed}};
      if (c.judgment.has_value()) {
        p["fixer_score"] = c.judgment->turn_score;
        p["fixer_conversation_score"] = c.judgment->score;
        p["fixer_scale"] = ScaleName(c.judgment->scale);
        p["threshold"] = Threshold(c.judgment->scale, c.family_threshold);
        p["judge"] = judge_identity_;
      } else {
        p["fixer_score"] = nullptr;
        p["judge"] = nullptr;
      }
      pair.provenance_json = curate::DumpJson(p);
      result_.pairs.push_back(std::move(pair));
    }
  }

  Store* store_;
  const std::vector<std::string>& runs_;
  ChatModel* fixer_;
  Judge* judge_;
  const CurateOptions& options_;
  Env* env_;
  const CurateProgressCallback& progress_cb_;
  const std::atomic<bool>* stop_;
  std::shared_ptr<EventMailbox> mailbox_;
  const std::string policy_;
  const std::string policy_hash_;
  const std::string fixer_identity_;
  const std::string judge_identity_;

  std::unique_ptr<FixCache> cache_;
  std::vector<Candidate> candidates_;
  std::set<std::string> ids_;
  std::vector<size_t> pending_;  // candidates needing work, in output order
  size_t next_ = 0;
  int64_t active_ = 0;
  bool stopping_ = false;
  int consecutive_failures_ = 0;
  Status fatal_;
  Status first_error_;
  int64_t started_us_ = 0;
  CurateProgress progress_;
  CurateResult result_;
};

}  // namespace

Result<CurateResult> Curate(Store* store, const std::vector<std::string>& runs, ChatModel* fixer,
                            Judge* judge, const CurateOptions& options,
                            const CurateProgressCallback& progress, const std::atomic<bool>* stop) {
  if (store == nullptr) return Status::InvalidArgument("no store given");
  Curator curator(store, runs, fixer, judge, options, progress, stop);
  return curator.Run();
}

}  // namespace breakfix
