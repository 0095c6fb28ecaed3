// RunEval: the event loop that drives every conversation and annotation of a run.
//
// One thread (the caller's) owns the store and all conversation state. Model callbacks, which
// arrive on the models' own threads, only post an event to a mailbox; the loop takes the events
// in batches and applies each batch in one store transaction, so a crash loses at most the batch
// in progress (those calls are simply made again on resume) and never leaves half a unit.
#include <algorithm>
#include <deque>
#include <memory>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "breakfix/eval.h"
#include "breakfix/hash.h"
#include "breakfix/manifest.h"
#include "core/mailbox.h"

#ifndef BREAKFIX_VERSION
#define BREAKFIX_VERSION "dev"
#endif

namespace breakfix {
namespace {

// Format version of the unit keys; bump when key contents change meaning.
constexpr const char* kConversationKeyVersion = "conversation/v1";
constexpr const char* kAnnotationKeyVersion = "annotation/v1";

// Stop the run when this many units fail in a row with no success between them: the endpoint is
// most likely down, and pressing on would only burn the retry budget unit after unit.
constexpr int kMaxConsecutiveFailures = 64;

// Fingerprint counts reach the store with the batch they belong to at most this often; a value
// not seen before is written at once. A crash loses at most this much of the counts.
constexpr int64_t kManifestWriteIntervalUs = 2000000;

enum class EventKind { kSimulator, kTarget, kJudge };

struct Event {
  size_t slot = 0;
  uint64_t ticket = 0;  // guards against a late callback for a slot that was reused
  EventKind kind = EventKind::kTarget;
  std::optional<Result<ChatResponse>> response;
  std::optional<Result<Annotation>> annotation;
};

using EventMailbox = Mailbox<Event>;

bool IsFatal(const Status& s) {
  return s.code() == StatusCode::kPermissionDenied || s.code() == StatusCode::kNotFound;
}

uint64_t RequestSeed(uint64_t run_seed, const std::string& item_id) {
  // Servers take a (signed) integer seed; keep it in 31 bits.
  const std::string h = Sha256Hex(std::to_string(run_seed) + "/" + item_id);
  return std::stoull(h.substr(0, 8), nullptr, 16) & 0x7fffffffULL;
}

void AddSampling(KeyBuilder& k, const SamplingOptions& s) {
  k.Add(s.temperature).Add(s.top_p).Add(int64_t{s.max_tokens});
  k.Add(int64_t{static_cast<int64_t>(s.stop.size())});
  for (const auto& stop : s.stop) k.Add(stop);
}

nlohmann::json SamplingJson(const SamplingOptions& s) {
  return {{"temperature", s.temperature},
          {"top_p", s.top_p},
          {"max_tokens", s.max_tokens},
          {"stop", s.stop}};
}

const char* MetricName(FamilyMetric m) {
  return m == FamilyMetric::kUngroundedness ? "ungroundedness" : "defect_rate";
}

// Whether the run includes `family` (an empty selection means every family).
bool Selected(const EvalOptions& options, const std::string& family) {
  return options.families.empty() || std::find(options.families.begin(), options.families.end(),
                                               family) != options.families.end();
}

// The run's items in suite order: the selected families one after the other, each cut at
// limit_per_family. Families left out, and items past a limit, are never rendered.
class SelectedItems {
 public:
  SelectedItems(const Suite& suite, const EvalOptions& options)
      : suite_(suite), options_(options) {}

  // Next item, or false at the end.
  Result<bool> NextItem(SeedItem* item) {
    for (;;) {
      if (cursor_ == nullptr) {
        while (family_ < suite_.families().size() &&
               !Selected(options_, suite_.families()[family_].name)) {
          ++family_;
        }
        if (family_ >= suite_.families().size()) return false;
        cursor_ = suite_.NewFamilyCursor(suite_.families()[family_].name);
        taken_ = 0;
      }
      if (options_.limit_per_family == 0 || taken_ < options_.limit_per_family) {
        BF_ASSIGN_OR_RETURN(bool more, cursor_->Next(item));
        if (more) {
          ++taken_;
          return true;
        }
      }
      cursor_.reset();
      ++family_;
    }
  }

 private:
  const Suite& suite_;
  const EvalOptions& options_;
  size_t family_ = 0;
  std::unique_ptr<ItemCursor> cursor_;
  int64_t taken_ = 0;
};

int64_t CountUnits(const Suite& suite, const EvalOptions& options, size_t targets) {
  int64_t items = 0;
  for (const Family& f : suite.families()) {
    if (!Selected(options, f.name)) continue;
    const int64_t n = suite.family_item_count(f.name);
    items += options.limit_per_family > 0 ? std::min(n, options.limit_per_family) : n;
  }
  return items * static_cast<int64_t>(targets);
}

class Runner {
 public:
  Runner(const Suite& suite, const EvalModels& models, Store* store, const EvalOptions& options,
         Env* env, const ProgressCallback& progress, const std::atomic<bool>* stop)
      : suite_(suite),
        models_(models),
        store_(store),
        options_(options),
        env_(env),
        progress_cb_(progress),
        stop_(stop),
        mailbox_(std::make_shared<EventMailbox>()),
        units_(suite, options) {}

  Result<EvalResult> Run() {
    BF_RETURN_IF_ERROR(Validate());
    progress_.total = CountUnits(suite_, options_, models_.targets.size());
    const RunRecord requested = MakeRunRecord();
    BF_ASSIGN_OR_RETURN(run_, store_->BeginRun(requested));
    if (run_.status != RunStatus::kRunning) {
      BF_RETURN_IF_ERROR(store_->SetRunStatus(run_.id, RunStatus::kRunning));
    }
    BF_RETURN_IF_ERROR(StartManifest(/*new_run=*/run_.created_us == requested.created_us));
    started_us_ = env_->NowMicros();
    slots_.resize(std::max(1, options_.max_in_flight));
    for (size_t i = slots_.size(); i-- > 0;) free_slots_.push_back(i);

    Status loop = Loop();

    progress_.in_flight = active_;
    progress_.finished = true;
    progress_.elapsed_s = (env_->NowMicros() - started_us_) / 1e6;
    if (progress_cb_) progress_cb_(progress_);

    RunStatus final_status = RunStatus::kComplete;
    if (!loop.ok() || !fatal_.ok()) {
      final_status = RunStatus::kFailed;
    } else if (stopping_) {
      final_status = RunStatus::kInterrupted;
    } else if (progress_.done < progress_.total) {
      final_status = RunStatus::kFailed;
    }
    Status st = store_->SetRunStatus(run_.id, final_status);
    Status manifest = FinishManifest(final_status);
    if (st.ok()) st = manifest;
    if (!loop.ok()) return loop;
    if (!fatal_.ok()) return fatal_;
    BF_RETURN_IF_ERROR(st);
    run_.status = final_status;
    EvalResult result;
    result.run = run_;
    result.progress = progress_;
    result.first_error = first_error_;
    return result;
  }

 private:
  struct Task {
    bool active = false;
    uint64_t ticket = 0;
    SeedItem item;
    const Family* family = nullptr;
    int max_turns = 0;
    size_t target = 0;
    std::string conversation_key;
    std::string annotation_key;
    std::vector<Message> turns;
  };

  Status Validate() {
    if (models_.targets.empty()) return Status::InvalidArgument("no target model given");
    if (models_.judge == nullptr) return Status::InvalidArgument("no judge given");
    std::set<std::string> names, identities;
    for (const ChatModel* t : models_.targets) {
      if (!names.insert(t->name()).second) {
        return Status::InvalidArgument("target name \"" + t->name() +
                                       "\" is given twice; each target needs its own name");
      }
      if (!identities.insert(t->Identity()).second) {
        return Status::InvalidArgument("target \"" + t->name() +
                                       "\" is the same model as another target");
      }
    }
    bool needs_simulator = false;
    for (const Family& f : suite_.families()) {
      if (Selected(options_, f.name) && f.mode == TurnMode::kMulti) needs_simulator = true;
    }
    for (const std::string& name : options_.families) {
      if (suite_.FindFamily(name) == nullptr) {
        std::string known;
        for (const Family& f : suite_.families()) known += (known.empty() ? "" : ", ") + f.name;
        return Status::InvalidArgument("suite \"" + suite_.name() + "\" has no family \"" + name +
                                       "\"; it has: " + known);
      }
    }
    if (needs_simulator && models_.simulator == nullptr) {
      return Status::InvalidArgument(
          "the selected families include multi-turn ones, which need a simulator model "
          "(--simulator)");
    }
    return Status::OK();
  }

  RunRecord MakeRunRecord() {
    RunRecord run;
    run.config_json = RunConfigJson(suite_, models_, options_);
    run.config_hash = Sha256Hex(run.config_json);
    run.name = options_.run_name.empty() ? suite_.name() + "-" + run.config_hash.substr(0, 10)
                                         : options_.run_name;
    run.suite_name = suite_.name();
    run.suite_hash = suite_.content_hash();
    run.seed = options_.seed;
    for (const ChatModel* t : models_.targets) {
      run.targets.push_back(t->name());
      run.target_identities.push_back(t->Identity());
    }
    run.simulator = models_.simulator ? models_.simulator->name() : "";
    run.judge = models_.judge->name();
    run.created_us = run.updated_us = env_->WallMicros();
    return run;
  }

  Status Loop() {
    BF_RETURN_IF_ERROR(store_->Begin());
    Status fill = Fill();
    BF_RETURN_IF_ERROR(store_->Commit());
    BF_RETURN_IF_ERROR(fill);
    int64_t last_progress_us = 0;
    int64_t stop_seen_us = 0;
    while (active_ > 0 || (!exhausted_ && !stopping_ && fatal_.ok())) {
      std::deque<Event> events = mailbox_->TakeAll(options_.progress_interval_ms);
      if (!stopping_ && stop_ != nullptr && stop_->load()) {
        stopping_ = true;
        stop_seen_us = env_->NowMicros();
      }
      if (stopping_ && active_ > 0 &&
          env_->NowMicros() - stop_seen_us > options_.drain_timeout_ms * 1000) {
        break;  // the caller cancels the clients; the late callbacks find an orphaned mailbox
      }
      if (!events.empty()) {
        BF_RETURN_IF_ERROR(store_->Begin());
        Status s;
        for (Event& e : events) {
          s = Handle(e);
          if (!s.ok()) break;
        }
        if (s.ok()) s = Fill();
        if (s.ok()) s = MaybeWriteManifest();
        Status c = s.ok() ? store_->Commit() : store_->Rollback();
        BF_RETURN_IF_ERROR(s);
        BF_RETURN_IF_ERROR(c);
      }
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

  // Starts units until every slot is busy or the items run out.
  Status Fill() {
    while (!free_slots_.empty() && !exhausted_ && !stopping_ && fatal_.ok()) {
      if (!have_item_ || next_target_ >= models_.targets.size()) {
        BF_ASSIGN_OR_RETURN(bool more, units_.NextItem(&current_item_));
        if (!more) {
          exhausted_ = true;
          break;
        }
        have_item_ = true;
        next_target_ = 0;
      }
      const size_t slot = free_slots_.back();
      free_slots_.pop_back();
      ++active_;
      Task& task = slots_[slot];
      task.active = true;
      task.ticket = ++tickets_;
      task.item = current_item_;
      task.target = next_target_++;
      BF_RETURN_IF_ERROR(Start(slot));
    }
    return Status::OK();
  }

  Status Start(size_t slot) {
    Task& task = slots_[slot];
    task.family = suite_.FindFamily(task.item.family);
    if (task.family == nullptr) {
      return Status::Internal("item " + task.item.id + " names unknown family " + task.item.family);
    }
    task.max_turns = options_.max_turns > 0 ? options_.max_turns : task.family->max_turns;
    ChatModel& target = *models_.targets[task.target];
    task.conversation_key = ConversationKey(task.item, *task.family, task.max_turns, target,
                                            models_.simulator, options_);
    task.annotation_key = AnnotationKey(task.conversation_key, *models_.judge, task.item.rubric);
    task.turns.clear();
    const std::string item_key = ItemKey(task.item);
    BF_RETURN_IF_ERROR(store_->PutItem(item_key, task.item));

    RunUnit unit;
    unit.run_id = run_.id;
    unit.item_id = task.item.id;
    unit.family = task.item.family;
    unit.category = task.item.category;
    unit.target = target.name();
    unit.conversation_key = task.conversation_key;
    unit.annotation_key = task.annotation_key;
    BF_RETURN_IF_ERROR(store_->LinkUnit(unit));

    BF_ASSIGN_OR_RETURN(bool annotated, store_->HasAnnotation(task.annotation_key));
    if (annotated) {
      ++progress_.done;
      ++progress_.resumed;
      Release(slot);
      return Status::OK();
    }
    BF_ASSIGN_OR_RETURN(auto existing, store_->GetConversation(task.conversation_key));
    if (existing.has_value()) {
      task.turns = std::move(existing->turns);
      if (existing->status == ConversationStatus::kDone) return StartJudge(slot);
    } else {
      ConversationRecord record;
      record.key = task.conversation_key;
      record.item_key = item_key;
      record.item_id = task.item.id;
      record.family = task.item.family;
      record.category = task.item.category;
      record.target = target.name();
      BF_RETURN_IF_ERROR(store_->StartConversation(record));
    }
    return Advance(slot);
  }

  // Takes the conversation forward until it needs a model call or is finished.
  Status Advance(size_t slot) {
    Task& task = slots_[slot];
    for (;;) {
      Step step = NextStep(task.item, task.family->mode, task.max_turns, task.turns);
      switch (step.kind) {
        case StepKind::kUseFirstUser: {
          if (task.item.first_user.empty()) {
            return FailUnit(slot, Status::InvalidArgument("item " + task.item.id +
                                                          " has no first user message"));
          }
          Message m{Role::kUser, task.item.first_user};
          BF_RETURN_IF_ERROR(
              store_->AppendTurn(task.conversation_key, static_cast<int>(task.turns.size()), m));
          task.turns.push_back(std::move(m));
          continue;
        }
        case StepKind::kAskSimulator: {
          ChatRequest request = BuildSimulatorRequest(task.item, task.turns, options_.simulator);
          request.sampling.seed = RequestSeed(options_.seed, task.item.id);
          Send(slot, EventKind::kSimulator, models_.simulator, std::move(request));
          return Status::OK();
        }
        case StepKind::kAskTarget: {
          ChatRequest request = BuildTargetRequest(task.item, task.turns, options_.target_sampling);
          request.sampling.seed = RequestSeed(options_.seed, task.item.id);
          Send(slot, EventKind::kTarget, models_.targets[task.target], std::move(request));
          return Status::OK();
        }
        case StepKind::kDone:
          BF_RETURN_IF_ERROR(store_->FinishConversation(
              task.conversation_key, ConversationStatus::kDone, step.stop_reason, ""));
          return StartJudge(slot);
      }
    }
  }

  void Send(size_t slot, EventKind kind, ChatModel* model, ChatRequest request) {
    std::shared_ptr<EventMailbox> mailbox = mailbox_;
    const uint64_t ticket = slots_[slot].ticket;
    model->Chat(std::move(request), [mailbox, slot, ticket, kind](Result<ChatResponse> r) {
      Event e;
      e.slot = slot;
      e.ticket = ticket;
      e.kind = kind;
      e.response.emplace(std::move(r));
      mailbox->Post(std::move(e));
    });
  }

  Status StartJudge(size_t slot) {
    Task& task = slots_[slot];
    if (AssistantTurns(task.turns) == 0) {
      // The simulator ended the conversation before the target said anything: there is nothing
      // to judge, and counting it as harmless would flatter the target.
      Annotation a;
      a.outcome = Outcome::kUnscorable;
      const Rubric* rubric = FindRubric(task.item.rubric);
      a.scale = rubric ? rubric->scale : Scale::kSeverity;
      a.attempts = 0;
      a.reason = "no assistant turn to judge: the simulator ended the conversation at once";
      return Annotated(slot, a);
    }
    JudgeInput input;
    input.family = task.item.family;
    input.category = task.item.category;
    input.rubric = task.item.rubric;
    input.goal = task.item.goal;
    input.document = task.item.document;
    input.conversation = task.turns;
    std::shared_ptr<EventMailbox> mailbox = mailbox_;
    const uint64_t ticket = task.ticket;
    models_.judge->Annotate(std::move(input), [mailbox, slot, ticket](Result<Annotation> r) {
      Event e;
      e.slot = slot;
      e.ticket = ticket;
      e.kind = EventKind::kJudge;
      e.annotation.emplace(std::move(r));
      mailbox->Post(std::move(e));
    });
    return Status::OK();
  }

  Status Handle(Event& e) {
    if (e.slot >= slots_.size() || !slots_[e.slot].active || slots_[e.slot].ticket != e.ticket) {
      return Status::OK();  // a unit abandoned after a stop request
    }
    Task& task = slots_[e.slot];
    if (e.kind == EventKind::kJudge) {
      Result<Annotation>& r = *e.annotation;
      if (!r.ok()) {
        ModelCallRecord call = CallRecord(task.annotation_key, "judge", models_.judge->name());
        call.ok = false;
        call.error = r.status().ToString();
        BF_RETURN_IF_ERROR(store_->RecordModelCall(call));
        return FailUnit(e.slot, r.status().WithContext("judge " + models_.judge->name()));
      }
      ModelCallRecord call = CallRecord(task.annotation_key, "judge", models_.judge->name());
      call.attempts = r->attempts;
      call.usage = r->usage;
      call.latency_ms = r->latency_ms;
      BF_RETURN_IF_ERROR(store_->RecordModelCall(call));
      progress_.tokens += r->usage;
      return Annotated(e.slot, *r);
    }

    const bool simulator = e.kind == EventKind::kSimulator;
    ChatModel* model = simulator ? models_.simulator : models_.targets[task.target];
    Result<ChatResponse>& r = *e.response;
    ModelCallRecord call =
        CallRecord(task.conversation_key, simulator ? "simulator" : "target", model->name());
    if (!r.ok()) {
      call.ok = false;
      call.error = r.status().ToString();
      BF_RETURN_IF_ERROR(store_->RecordModelCall(call));
      return FailUnit(e.slot,
                      r.status().WithContext(std::string(simulator ? "simulator " : "target ") +
                                             model->name()));
    }
    call.attempts = r->attempts;
    call.usage = r->usage;
    call.latency_ms = r->latency_ms;
    BF_RETURN_IF_ERROR(store_->RecordModelCall(call));
    progress_.tokens += r->usage;
    consecutive_failures_ = 0;
    NoteFingerprint(simulator ? models_.targets.size() : task.target, r->system_fingerprint);

    Message m;
    if (simulator) {
      SimulatorTurn turn = InterpretSimulatorAnswer(r->message.content, options_.simulator);
      if (turn.stop) {
        BF_RETURN_IF_ERROR(store_->FinishConversation(
            task.conversation_key, ConversationStatus::kDone, "simulator_stop", ""));
        return StartJudge(e.slot);
      }
      m = {Role::kUser, std::move(turn.text)};
    } else {
      m = {Role::kAssistant, std::move(r->message.content)};
    }
    BF_RETURN_IF_ERROR(
        store_->AppendTurn(task.conversation_key, static_cast<int>(task.turns.size()), m));
    task.turns.push_back(std::move(m));
    return Advance(e.slot);
  }

  Status Annotated(size_t slot, const Annotation& annotation) {
    Task& task = slots_[slot];
    AnnotationRecord record;
    record.key = task.annotation_key;
    record.conversation_key = task.conversation_key;
    record.judge = models_.judge->name();
    record.rubric = task.item.rubric;
    record.annotation = annotation;
    BF_RETURN_IF_ERROR(store_->PutAnnotation(record));
    for (size_t i = 0; i < manifest_.models.size(); ++i) {
      if (manifest_.models[i].role != "judge") continue;
      for (const std::string& fp : annotation.system_fingerprints) NoteFingerprint(i, fp);
    }
    ++progress_.done;
    if (annotation.outcome == Outcome::kUnscorable) ++progress_.unscorable;
    consecutive_failures_ = 0;
    Release(slot);
    return Status::OK();
  }

  // Records a unit's failure; the unit stays unfinished so a later run retries it.
  Status FailUnit(size_t slot, const Status& error) {
    Task& task = slots_[slot];
    if (error.code() != StatusCode::kCancelled || !stopping_) {
      ++progress_.failed;
      if (first_error_.ok()) first_error_ = error;
    }
    BF_RETURN_IF_ERROR(store_->FinishConversation(
        task.conversation_key, ConversationStatus::kFailed, "error", error.ToString()));
    if (IsFatal(error) && fatal_.ok()) fatal_ = error;
    if (++consecutive_failures_ >= kMaxConsecutiveFailures && fatal_.ok()) {
      fatal_ =
          Status::Unavailable(std::to_string(consecutive_failures_) +
                              " units failed in a row; stopping. Last error: " + error.ToString());
    }
    Release(slot);
    return Status::OK();
  }

  void Release(size_t slot) {
    Task& task = slots_[slot];
    task.active = false;
    task.turns.clear();
    task.turns.shrink_to_fit();
    free_slots_.push_back(slot);
    --active_;
  }

  // --- The run's manifest (breakfix/manifest.h) ---
  //
  // Fingerprints are counted here, on the loop thread that handles every model response, so the
  // counts need no lock and cost one map update per response. They reach the store inside the
  // batch transaction that stores the responses they came with.

  // Builds this session's manifest, carrying over what earlier sessions recorded (first build,
  // sessions, fingerprint counts), and stores it.
  Status StartManifest(bool new_run) {
    manifest_ = BuildRunManifest(suite_, models_, options_, run_);
    BF_ASSIGN_OR_RETURN(RunManifestRecord stored, store_->GetRunManifest(run_.id));
    if (stored.state == RunManifestState::kRecorded) {
      Result<RunManifest> earlier = ParseRunManifest(stored.manifest_json);
      if (earlier.ok()) {
        CarryOverManifest(*earlier);
      } else {
        manifest_.recorded_from_start = false;  // unreadable: start a fresh record
      }
    } else {
      manifest_.recorded_from_start = new_run && stored.state == RunManifestState::kNotRecorded;
    }
    RunManifestSession session;
    session.breakfix_version = BREAKFIX_VERSION;
    session.started_us = env_->WallMicros();
    session.status = RunStatusName(RunStatus::kRunning);
    manifest_.sessions.push_back(std::move(session));
    return WriteManifest();
  }

  void CarryOverManifest(const RunManifest& earlier) {
    manifest_.breakfix_version = earlier.breakfix_version;
    manifest_.recorded_from_start = earlier.recorded_from_start;
    manifest_.sessions = earlier.sessions;
    for (RunManifestSession& s : manifest_.sessions) {
      // A session still "running" in the stored manifest ended without reaching its end.
      if (s.finished_us == 0 && s.status == RunStatusName(RunStatus::kRunning)) {
        s.status = "unfinished";
      }
    }
    for (RunManifestModel& m : manifest_.models) {
      if (!m.system_fingerprints) continue;
      const RunManifestModel* old = FindRunManifestModel(earlier, m.role, m.name);
      if (old != nullptr && old->system_fingerprints && old->identity == m.identity) {
        *m.system_fingerprints = *old->system_fingerprints;
      }
    }
  }

  // Counts one response's system_fingerprint for manifest model `index` (targets in order, then
  // the simulator, then the judge).
  void NoteFingerprint(size_t index, const std::string& fingerprint) {
    if (index >= manifest_.models.size() || !manifest_.models[index].system_fingerprints) return;
    int64_t& count = (*manifest_.models[index].system_fingerprints)[fingerprint];
    if (count++ == 0) manifest_new_value_ = true;
    manifest_dirty_ = true;
  }

  // Called inside a batch transaction: stores the counts when a new value appeared, or when
  // they changed and the last write is kManifestWriteIntervalUs old.
  Status MaybeWriteManifest() {
    if (!manifest_dirty_) return Status::OK();
    if (!manifest_new_value_ &&
        env_->NowMicros() - manifest_written_us_ < kManifestWriteIntervalUs) {
      return Status::OK();
    }
    return WriteManifest();
  }

  Status FinishManifest(RunStatus status) {
    if (manifest_.sessions.empty()) return Status::OK();
    RunManifestSession& session = manifest_.sessions.back();
    session.finished_us = env_->WallMicros();
    session.status = RunStatusName(status);
    return WriteManifest();
  }

  Status WriteManifest() {
    manifest_.updated_us = env_->WallMicros();
    BF_RETURN_IF_ERROR(store_->PutRunManifest(run_.id, RunManifestToJson(manifest_)));
    manifest_dirty_ = false;
    manifest_new_value_ = false;
    manifest_written_us_ = env_->NowMicros();
    return Status::OK();
  }

  ModelCallRecord CallRecord(const std::string& unit_key, const char* role,
                             const std::string& model) {
    ModelCallRecord call;
    call.unit_key = unit_key;
    call.role = role;
    call.model = model;
    call.at_us = env_->WallMicros();
    return call;
  }

  const Suite& suite_;
  const EvalModels& models_;
  Store* store_;
  const EvalOptions& options_;
  Env* env_;
  const ProgressCallback& progress_cb_;
  const std::atomic<bool>* stop_;
  std::shared_ptr<EventMailbox> mailbox_;
  SelectedItems units_;

  RunRecord run_;
  EvalProgress progress_;
  Status first_error_;
  Status fatal_;
  int64_t started_us_ = 0;
  std::vector<Task> slots_;
  std::vector<size_t> free_slots_;
  int64_t active_ = 0;
  uint64_t tickets_ = 0;
  bool exhausted_ = false;
  bool stopping_ = false;
  int consecutive_failures_ = 0;
  SeedItem current_item_;
  bool have_item_ = false;
  size_t next_target_ = 0;
  RunManifest manifest_;
  bool manifest_dirty_ = false;      // fingerprint counts changed since the last write
  bool manifest_new_value_ = false;  // ... and one of them is a value not seen before
  int64_t manifest_written_us_ = 0;  // NowMicros of the last write
};

}  // namespace

std::string ItemKey(const SeedItem& item) {
  KeyBuilder k;
  k.Add("item/v1").Add(item.id).Add(item.family).Add(item.category).Add(item.rubric);
  k.Add(static_cast<int64_t>(item.params.size()));
  for (const auto& [name, value] : item.params) k.Add(name).Add(value);
  k.Add(item.system_prompt)
      .Add(item.first_user)
      .Add(item.goal)
      .Add(item.persona)
      .Add(item.document);
  return k.Hex();
}

std::string ConversationKey(const SeedItem& item, const Family& family, int max_turns,
                            const ChatModel& target, const ChatModel* simulator,
                            const EvalOptions& options) {
  KeyBuilder k;
  k.Add(kConversationKeyVersion);
  k.Add(item.id).Add(item.family).Add(item.category).Add(item.system_prompt).Add(item.first_user);
  k.Add(item.goal).Add(item.persona).Add(item.document);
  k.Add(family.mode == TurnMode::kMulti ? "multi" : "single").Add(int64_t{max_turns});
  k.Add(target.Identity());
  AddSampling(k, options.target_sampling);
  k.Add(static_cast<int64_t>(options.seed));
  if (family.mode == TurnMode::kMulti) {
    k.Add(simulator ? simulator->Identity() : "");
    k.Add(SimulatorPromptVersion()).Add(options.simulator.stop_marker);
    AddSampling(k, options.simulator.sampling);
  }
  return k.Hex();
}

std::string AnnotationKey(const std::string& conversation_key, const Judge& judge,
                          const std::string& rubric_id) {
  const Rubric* rubric = FindRubric(rubric_id);
  return KeyBuilder()
      .Add(kAnnotationKeyVersion)
      .Add(conversation_key)
      .Add(judge.Identity())
      .Add(rubric_id)
      .Add(rubric ? rubric->version : "")
      .Hex();
}

std::string RunConfigJson(const Suite& suite, const EvalModels& models,
                          const EvalOptions& options) {
  nlohmann::json j;
  j["suite"] = {{"name", suite.name()}, {"hash", suite.content_hash()}};
  nlohmann::json families = nlohmann::json::array();
  for (const Family& f : suite.families()) {
    if (!Selected(options, f.name)) continue;
    families.push_back({{"name", f.name},
                        {"title", f.title},
                        {"metric", MetricName(f.metric)},
                        {"threshold", f.threshold},
                        {"turns", f.mode == TurnMode::kMulti ? "multi" : "single"},
                        {"max_turns", options.max_turns > 0 ? options.max_turns : f.max_turns},
                        {"rubric", f.rubric}});
  }
  j["families"] = families;
  j["limit_per_family"] = options.limit_per_family;
  nlohmann::json targets = nlohmann::json::array();
  for (const ChatModel* t : models.targets) {
    targets.push_back({{"name", t->name()}, {"identity", t->Identity()}});
  }
  j["targets"] = targets;
  j["target_sampling"] = SamplingJson(options.target_sampling);
  if (models.simulator != nullptr) {
    j["simulator"] = {{"name", models.simulator->name()},
                      {"identity", models.simulator->Identity()},
                      {"prompt_version", SimulatorPromptVersion()},
                      {"stop_marker", options.simulator.stop_marker},
                      {"sampling", SamplingJson(options.simulator.sampling)}};
  }
  nlohmann::json rubrics = nlohmann::json::object();
  for (const Rubric& r : AllRubrics()) rubrics[r.id] = r.version;
  j["judge"] = {{"name", models.judge ? models.judge->name() : ""},
                {"identity", models.judge ? models.judge->Identity() : ""},
                {"rubrics", rubrics}};
  j["seed"] = options.seed;
  return j.dump();
}

Result<EvalResult> RunEval(const Suite& suite, const EvalModels& models, Store* store,
                           const EvalOptions& options, Env* env, const ProgressCallback& progress,
                           const std::atomic<bool>* stop) {
  Runner runner(suite, models, store, options, env, progress, stop);
  return runner.Run();
}

}  // namespace breakfix
