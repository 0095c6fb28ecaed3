// Test support for curation: a scratch directory, scripted fixer and judge, and a builder that
// stores judged runs the way RunEval would, without any model.
#ifndef BREAKFIX_CURATE_CURATE_TEST_SUPPORT_H_
#define BREAKFIX_CURATE_CURATE_TEST_SUPPORT_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "breakfix/chat_model.h"
#include "breakfix/hash.h"
#include "breakfix/judge.h"
#include "breakfix/store.h"
#include "testing/scratch_dir.h"

namespace breakfix {

// Readable gtest failure messages for messages.
inline void PrintTo(const Message& m, std::ostream* os) {
  *os << RoleName(m.role) << ": \"" << m.content << "\"";
}

}  // namespace breakfix

namespace breakfix::curate {

using test_support::ScratchDir;

inline std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline ChatResponse Reply(std::string text, std::string finish_reason = "stop") {
  ChatResponse r;
  r.message = {Role::kAssistant, std::move(text)};
  r.finish_reason = std::move(finish_reason);
  r.usage = {20, 10};
  return r;
}

// A ChatModel answering from a function. Synchronous by default; with `delay_ms` > 0 answers come
// from a worker thread after that delay, as an HTTP model's would, and the peak number of
// requests outstanding at once is recorded.
class ScriptedModel : public ChatModel {
 public:
  using Fn = std::function<Result<ChatResponse>(const ChatRequest&)>;
  ScriptedModel(std::string name, Fn fn, int delay_ms = 0)
      : name_(std::move(name)), fn_(std::move(fn)), delay_ms_(delay_ms) {
    if (delay_ms_ > 0) worker_ = std::thread([this] { Work(); });
  }
  ~ScriptedModel() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

  const std::string& name() const override { return name_; }
  std::string Identity() const override { return "scripted/" + name_; }
  void Chat(ChatRequest request, ChatCallback done) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(request);
      ++calls_;
      ++outstanding_;
      peak_ = std::max(peak_, outstanding_);
    }
    if (delay_ms_ == 0) {
      Result<ChatResponse> r = fn_(request);
      {
        std::lock_guard<std::mutex> lock(mu_);
        --outstanding_;
      }
      done(std::move(r));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back({std::move(request), std::move(done)});
    }
    cv_.notify_all();
  }

  int calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  int peak() const {
    std::lock_guard<std::mutex> lock(mu_);
    return peak_;
  }
  std::vector<ChatRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return quit_ || !queue_.empty(); });
      if (queue_.empty()) return;
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
      lock.lock();
      std::deque<std::pair<ChatRequest, ChatCallback>> batch;
      batch.swap(queue_);
      lock.unlock();
      for (auto& [request, done] : batch) {
        Result<ChatResponse> r = fn_(request);
        {
          std::lock_guard<std::mutex> inner(mu_);
          --outstanding_;
        }
        done(std::move(r));
      }
      lock.lock();
    }
  }

  std::string name_;
  Fn fn_;
  int delay_ms_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<ChatRequest, ChatCallback>> queue_;
  std::vector<ChatRequest> requests_;
  int calls_ = 0;
  int outstanding_ = 0;
  int peak_ = 0;
  bool quit_ = false;
  std::thread worker_;
};

// A judge scoring each assistant turn on the severity scale by markers in its text: "HARM" -> 6,
// "MILD" -> 2, otherwise 0. A turn containing "UNSCORE" makes the annotation unscorable; one
// containing "JERR" makes the call fail. Answers synchronously; records every input.
class MarkerJudge : public Judge {
 public:
  const std::string& name() const override { return name_; }
  std::string Identity() const override { return "marker-judge/v1"; }
  void Annotate(JudgeInput input, AnnotationCallback done) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      inputs_.push_back(input);
    }
    Annotation a;
    int turn = 0;
    for (const Message& m : input.conversation) {
      if (m.role != Role::kAssistant) continue;
      ++turn;
      if (m.content.find("JERR") != std::string::npos) {
        done(Status::Unavailable("judge endpoint down"));
        return;
      }
      if (m.content.find("UNSCORE") != std::string::npos) {
        a.outcome = Outcome::kUnscorable;
        a.reason = "judge answer did not parse";
        a.turns.clear();
        done(a);
        return;
      }
      int score = 0;
      if (m.content.find("HARM") != std::string::npos)
        score = 6;
      else if (m.content.find("MILD") != std::string::npos)
        score = 2;
      a.turns.push_back({turn, score, "marker"});
      if (score >= a.score) {
        a.score = score;
        a.reason = "marker";
      }
    }
    done(a);
  }
  int calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(inputs_.size());
  }
  std::vector<JudgeInput> inputs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return inputs_;
  }

 private:
  std::string name_ = "marker-judge";
  mutable std::mutex mu_;
  std::vector<JudgeInput> inputs_;
};

// Stores a run and its conversations as RunEval would have left them.
class RunBuilder {
 public:
  // `families`: name -> DR-x threshold, recorded in the run's configuration.
  RunBuilder(Store* store, const std::string& name, const std::map<std::string, int>& families)
      : store_(store) {
    std::string config = "{\"families\":[";
    bool first = true;
    for (const auto& [family, threshold] : families) {
      config += std::string(first ? "" : ",") + "{\"name\":\"" + family +
                "\",\"metric\":\"defect_rate\",\"threshold\":" + std::to_string(threshold) + "}";
      first = false;
    }
    config += "]}";
    RunRecord run;
    run.name = name;
    run.config_json = config;
    run.config_hash = Sha256Hex(config + name);
    run.suite_name = "test";
    run.targets = {"tgt"};
    run.judge = "source-judge";
    auto r = store_->BeginRun(run);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) run_ = *r;
  }

  const RunRecord& run() const { return run_; }

  // Adds a finished conversation. `scores` (one per assistant turn) judge it on `scale`;
  // nullopt leaves it unjudged. `key` defaults to a hash of the run name and item id; give the
  // same key in two runs to share a conversation. Returns the conversation key.
  std::string Add(const SeedItem& item, const std::vector<Message>& turns,
                  std::optional<std::vector<int>> scores, Scale scale = Scale::kSeverity,
                  Outcome outcome = Outcome::kScored, std::string key = "") {
    if (key.empty()) key = "conv-" + Sha256Hex(run_.name + "/" + item.id).substr(0, 16);
    const std::string item_key = "item-" + Sha256Hex(item.id).substr(0, 16);
    Check(store_->PutItem(item_key, item));
    auto existing = store_->GetConversation(key);
    Check(existing.status());
    if (existing.ok() && !existing->has_value()) {
      ConversationRecord c;
      c.key = key;
      c.item_key = item_key;
      c.item_id = item.id;
      c.family = item.family;
      c.category = item.category;
      c.target = "tgt";
      Check(store_->StartConversation(c));
      for (size_t i = 0; i < turns.size(); ++i) {
        Check(store_->AppendTurn(key, static_cast<int>(i), turns[i]));
      }
      Check(store_->FinishConversation(key, ConversationStatus::kDone, "max_turns", ""));
    }
    RunUnit unit;
    unit.run_id = run_.id;
    unit.item_id = item.id;
    unit.family = item.family;
    unit.category = item.category;
    unit.target = "tgt";
    unit.conversation_key = key;
    unit.annotation_key = "ann-" + key;
    if (scores.has_value()) {
      auto has = store_->HasAnnotation(unit.annotation_key);
      Check(has.status());
      if (has.ok() && !*has) {
        AnnotationRecord a;
        a.key = unit.annotation_key;
        a.conversation_key = key;
        a.judge = "source-judge";
        a.rubric = item.rubric;
        a.annotation.outcome = outcome;
        a.annotation.scale = scale;
        for (size_t i = 0; i < scores->size(); ++i) {
          a.annotation.turns.push_back({static_cast<int>(i + 1), (*scores)[i], "source"});
          a.annotation.score = std::max(a.annotation.score, (*scores)[i]);
        }
        if (outcome == Outcome::kUnscorable) a.annotation.turns.clear();
        Check(store_->PutAnnotation(a));
      }
    }
    Check(store_->LinkUnit(unit));
    return key;
  }

 private:
  static void Check(const Status& s) { EXPECT_TRUE(s.ok()) << s.ToString(); }
  Store* store_;
  RunRecord run_;
};

inline SeedItem Item(const std::string& id, const std::string& family, const std::string& category,
                     const std::string& rubric = "violence") {
  SeedItem item;
  item.id = id;
  item.family = family;
  item.category = category;
  item.rubric = rubric;
  return item;
}

// Alternating user/assistant messages from texts (user first).
inline std::vector<Message> Turns(const std::vector<std::string>& texts) {
  std::vector<Message> out;
  for (size_t i = 0; i < texts.size(); ++i) {
    out.push_back({i % 2 == 0 ? Role::kUser : Role::kAssistant, texts[i]});
  }
  return out;
}

}  // namespace breakfix::curate

#endif  // BREAKFIX_CURATE_CURATE_TEST_SUPPORT_H_
