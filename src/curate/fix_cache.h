// FixCache: the sidecar JSONL that makes a curation resumable.
//
// Two kinds of line are appended as results arrive:
//   {"type":"fix","key":K,"conversation_key":..,"fixer":identity,"reply":..,"finish_reason":..}
//   {"type":"judgment","key":K,"conversation_key":..,"judge":identity,"outcome":"scored",
//    "scale":"severity","score":N,"turn_score":N,"reason":".."}
// A fix key covers everything that determines the fixer's reply (conversation, turn, the exact
// request with its policy, sampling and seed, the fixer's identity); a judgment key adds the
// reply, the judge's identity and the rubric. A later line with the same key replaces an earlier
// one. Lines that do not parse (the torn last line of a killed process) are skipped and counted;
// the next append starts on a fresh line.
//
// Failed calls are never cached, so the next curation retries them. Not thread-safe.
#ifndef BREAKFIX_CURATE_FIX_CACHE_H_
#define BREAKFIX_CURATE_FIX_CACHE_H_

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "breakfix/judge.h"
#include "breakfix/status.h"

namespace breakfix::curate {

struct CachedFix {
  std::string reply;
  std::string finish_reason;
};

struct CachedJudgment {
  Outcome outcome = Outcome::kScored;
  Scale scale = Scale::kSeverity;
  int score = 0;       // the conversation's score (worst turn)
  int turn_score = 0;  // the fixer's turn
  std::string reason;
};

class FixCache {
 public:
  // Reads `path` if it exists and opens it for appending (creating it and its directory).
  static Result<std::unique_ptr<FixCache>> Open(const std::string& path);
  ~FixCache();
  FixCache(const FixCache&) = delete;
  FixCache& operator=(const FixCache&) = delete;

  const CachedFix* FindFix(const std::string& key) const;
  const CachedJudgment* FindJudgment(const std::string& key) const;

  // Append one line (buffered until Flush). `conversation_key` and `model` are for people
  // reading the file.
  Status AddFix(const std::string& key, const std::string& conversation_key,
                const std::string& fixer, const CachedFix& fix);
  Status AddJudgment(const std::string& key, const std::string& conversation_key,
                     const std::string& judge, const CachedJudgment& judgment);
  // Hands buffered lines to the OS, so they survive the process being killed.
  Status Flush();

  int64_t ignored_lines() const { return ignored_lines_; }
  size_t size() const { return fixes_.size() + judgments_.size(); }

 private:
  FixCache(std::string path, std::FILE* f) : path_(std::move(path)), f_(f) {}
  Status Append(const std::string& line);

  std::string path_;
  std::FILE* f_;
  std::map<std::string, CachedFix> fixes_;
  std::map<std::string, CachedJudgment> judgments_;
  int64_t ignored_lines_ = 0;
  Status error_;  // sticky write error
};

}  // namespace breakfix::curate

#endif  // BREAKFIX_CURATE_FIX_CACHE_H_
