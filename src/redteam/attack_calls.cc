// The attack's call journal, request hashing and the names of the red-team enums.
#include "breakfix/hash.h"
#include "breakfix/redteam.h"

namespace breakfix {

const char* AttackRoleName(AttackRole role) {
  switch (role) {
    case AttackRole::kAttacker:
      return "attacker";
    case AttackRole::kTarget:
      return "target";
    case AttackRole::kScorer:
      return "scorer";
  }
  return "?";
}

const char* AttackOutcomeName(AttackOutcome outcome) {
  switch (outcome) {
    case AttackOutcome::kSucceeded:
      return "succeeded";
    case AttackOutcome::kResisted:
      return "resisted";
    case AttackOutcome::kAttackerRefused:
      return "attacker_refused";
    case AttackOutcome::kAttackerOffTopic:
      return "attacker_off_topic";
  }
  return "?";
}

const char* AttackerPersonaName(AttackerPersona persona) {
  return persona == AttackerPersona::kLowSkilled ? "low_skilled" : "intermediate";
}

Result<AttackerPersona> ParseAttackerPersona(const std::string& name) {
  if (name == "low_skilled") return AttackerPersona::kLowSkilled;
  if (name == "intermediate") return AttackerPersona::kIntermediate;
  return Status::InvalidArgument("unknown attacker persona \"" + name +
                                 "\" (expected low_skilled or intermediate)");
}

std::string RequestHash(const ChatRequest& request) {
  KeyBuilder k;
  k.Add("attack-request/v1");
  for (const Message& m : request.messages) k.Add(RoleName(m.role)).Add(m.content);
  k.Add(request.sampling.temperature).Add(request.sampling.top_p);
  k.Add(static_cast<int64_t>(request.sampling.max_tokens));
  k.Add(request.sampling.seed ? static_cast<int64_t>(*request.sampling.seed) : int64_t{-1});
  for (const std::string& s : request.sampling.stop) k.Add(s);
  return k.Hex();
}

Result<std::optional<JournalEntry>> MemoryJournal::Find(const std::string& attack, int64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find({attack, seq});
  if (it == entries_.end()) return std::optional<JournalEntry>();
  return std::optional<JournalEntry>(it->second);
}

Status MemoryJournal::Record(const std::string& attack, int64_t seq, const JournalEntry& entry) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_[{attack, seq}] = entry;
  return Status::OK();
}

size_t MemoryJournal::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

AttackCalls::AttackCalls(std::string attack_key, CallJournal* journal, ChatModel* attacker,
                         ChatModel* target, ChatModel* scorer)
    : key_(std::move(attack_key)),
      journal_(journal),
      attacker_(attacker),
      target_(target),
      scorer_(scorer) {}

Result<std::string> AttackCalls::Call(AttackRole role, const ChatRequest& request) {
  const int64_t seq = seq_++;
  const std::string hash = RequestHash(request);
  BF_ASSIGN_OR_RETURN(std::optional<JournalEntry> recorded, journal_->Find(key_, seq));
  if (recorded) {
    if (recorded->role != role || recorded->request_hash != hash) {
      return Status::FailedPrecondition(
          "attack " + key_ + ", call " + std::to_string(seq) + ": the journal holds a " +
          AttackRoleName(recorded->role) +
          " call with another request; the attack's settings "
          "or models changed since it was recorded (start it under a new campaign name)");
    }
    ++replayed_;
    usage_[role] += recorded->usage;
    return recorded->response;
  }
  ChatModel* model = role == AttackRole::kAttacker ? attacker_
                     : role == AttackRole::kTarget ? target_
                                                   : scorer_;
  if (model == nullptr) {
    return Status::InvalidArgument(std::string("attack needs a ") + AttackRoleName(role) +
                                   " model");
  }
  Result<ChatResponse> response = model->ChatSync(request);
  if (!response.ok()) {
    return response.status().WithContext(std::string(AttackRoleName(role)) + " call " +
                                         std::to_string(seq) + " of attack " + key_);
  }
  JournalEntry entry;
  entry.role = role;
  entry.request_hash = hash;
  entry.response = response->message.content;
  entry.usage = response->usage;
  BF_RETURN_IF_ERROR(journal_->Record(key_, seq, entry));
  ++fresh_;
  usage_[role] += entry.usage;
  return entry.response;
}

}  // namespace breakfix
