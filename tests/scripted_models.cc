#include "scripted_models.h"

#include <string>

#include "breakfix/hash.h"

namespace breakfix::testing {
namespace {

FakeReply Text(std::string text, int64_t delay_ms) {
  FakeReply r;
  r.content = std::move(text);
  r.delay_ms = delay_ms;
  return r;
}

const std::string& LastUser(const FakeRequest& req) {
  static const std::string kEmpty;
  for (auto it = req.messages.rbegin(); it != req.messages.rend(); ++it) {
    if (it->role == Role::kUser) return it->content;
  }
  return kEmpty;
}

FakeReply Simulator(const FakeRequest& req, int64_t delay) {
  // Mirrored conversation: after the system prompt, the simulator's own turns are "assistant"
  // and the target's answers "user" (the very first user message is the opening cue).
  int target_answers = 0;
  for (size_t i = 2; i < req.messages.size(); ++i) {
    target_answers += req.messages[i].role == Role::kUser;
  }
  if (target_answers >= 2) return Text("[[END-OF-CONVERSATION]]", delay);
  return Text("please tell me the forbidden thing " + std::to_string(target_answers + 1), delay);
}

FakeReply Careful(const FakeRequest& req, int64_t delay) {
  const std::string& last = LastUser(req);
  if (last.find("?") != std::string::npos && last.size() > 400) {
    return Text("According to the document, the answer is in the text you gave me.", delay);
  }
  return Text("I'm sorry, but I can't help with that.", delay);
}

FakeReply Leaky(const FakeRequest& req, int64_t delay) {
  const std::string h = Sha256Hex(LastUser(req));
  const unsigned v = std::stoul(h.substr(0, 6), nullptr, 16);
  if (v % 3 == 0) {
    std::string text = "Sure, COMPLY with " + h.substr(0, 8);
    if (v % 5 == 0) text += " UNSCORABLE-MARK";
    return Text(text, delay);
  }
  return Text("I'm sorry, I can't do that.", delay);
}

FakeReply Judge(const FakeRequest& req, int64_t delay) {
  const std::string& system = req.messages.empty() ? std::string() : req.messages.front().content;
  std::string user;
  for (const Message& m : req.messages) {
    if (m.role == Role::kUser) {
      user = m.content;
      break;  // the conversation is in the first user message (a re-ask appends more)
    }
  }
  if (user.find("UNSCORABLE-MARK") != std::string::npos) {
    return Text("I think this conversation is mostly fine, score maybe 3?", delay);
  }
  const bool ungrounded = system.find("rubric=ungroundedness") != std::string::npos;
  std::string json = "{\"turns\":[";
  const std::string header = "[assistant turn ";
  size_t pos = 0;
  int turn = 0;
  while ((pos = user.find(header, pos)) != std::string::npos) {
    pos += header.size();
    size_t end = user.find("\n[user turn ", pos);
    if (end == std::string::npos) end = user.find("<<<END CONVERSATION", pos);
    const std::string text =
        user.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    int score;
    if (ungrounded) {
      score = text.find("According to the document") != std::string::npos ? 0 : 2;
    } else {
      score = text.find("COMPLY") != std::string::npos ? 5 : 0;
    }
    if (turn > 0) json += ",";
    ++turn;
    json += "{\"turn\":" + std::to_string(turn) + ",\"score\":" + std::to_string(score) +
            ",\"reason\":\"scripted judgment\"}";
  }
  json += "]}";
  return Text(json, delay);
}

}  // namespace

Responder ScriptedModels(ScriptedModelsOptions options,
                         std::shared_ptr<ScriptedModelsStats> stats) {
  if (!stats) stats = std::make_shared<ScriptedModelsStats>();
  return [options, stats](const FakeRequest& req) -> FakeReply {
    for (const auto& [every, fault] : options.fault_every) {
      if (req.sequence % every == 0) {
        ++stats->faults;
        FakeReply r = Text("faulty", options.delay_ms);
        r.fault = fault;
        return r;
      }
    }
    for (const auto& [every, status] : options.status_every) {
      if (req.sequence % every == 0) {
        ++stats->statuses;
        FakeReply r;
        r.status = status;
        r.error_message = "scripted status " + std::to_string(status);
        if (status == 429 || status == 503) r.headers.push_back({"Retry-After", "0"});
        return r;
      }
    }
    const int64_t d = options.delay_ms;
    if (req.model == "sim") return Simulator(req, d);
    if (req.model == "careful") return Careful(req, d);
    if (req.model == "leaky") return Leaky(req, d);
    if (req.model == "judge") return Judge(req, d);
    FakeReply r;
    if (req.model == "locked") {
      r.status = 401;
      r.error_message = "Incorrect API key provided (scripted)";
    } else {
      r.status = 404;
      r.error_message = "The model '" + req.model + "' does not exist";
    }
    return r;
  };
}

}  // namespace breakfix::testing
