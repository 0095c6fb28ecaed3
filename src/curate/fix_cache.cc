#include "curate/fix_cache.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "curate/json_text.h"
#include "curate/line_reader.h"

namespace breakfix::curate {
namespace {

using nlohmann::json;

bool ParseScale(const std::string& name, Scale* out) {
  for (Scale s : {Scale::kSeverity, Scale::kUngroundedness, Scale::kBinary}) {
    if (name == ScaleName(s)) {
      *out = s;
      return true;
    }
  }
  return false;
}

bool ParseOutcome(const std::string& name, Outcome* out) {
  for (Outcome o : {Outcome::kScored, Outcome::kUnscorable}) {
    if (name == OutcomeName(o)) {
      *out = o;
      return true;
    }
  }
  return false;
}

// Whether the file's last byte is something other than '\n' (a line torn by a kill).
bool EndsMidLine(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  bool torn = false;
  if (std::fseek(f, -1, SEEK_END) == 0) torn = std::fgetc(f) != '\n';
  std::fclose(f);
  return torn;
}

}  // namespace

Result<std::unique_ptr<FixCache>> FixCache::Open(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) BF_RETURN_IF_ERROR(MakeDirs(parent.string()));
  const bool exists = std::filesystem::exists(path);
  const bool torn = exists && EndsMidLine(path);
  std::FILE* f = std::fopen(path.c_str(), "ab");
  if (f == nullptr) {
    return Status::IOError("cache " + path +
                           ": cannot open for appending: " + std::strerror(errno));
  }
  std::unique_ptr<FixCache> cache(new FixCache(path, f));
  if (exists) {
    BF_ASSIGN_OR_RETURN(auto reader, LineReader::Open(path));
    std::string line;
    for (;;) {
      BF_ASSIGN_OR_RETURN(bool more, reader->Next(&line));
      if (!more) break;
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
      bool ok = j.is_object() && j.contains("type") && j["type"].is_string() && j.contains("key") &&
                j["key"].is_string();
      if (ok && j["type"] == "fix") {
        ok = j.contains("reply") && j["reply"].is_string() && j.contains("finish_reason") &&
             j["finish_reason"].is_string();
        if (ok) {
          cache->fixes_[j["key"].get<std::string>()] = {j["reply"].get<std::string>(),
                                                        j["finish_reason"].get<std::string>()};
        }
      } else if (ok && j["type"] == "judgment") {
        CachedJudgment c;
        ok = j.contains("outcome") && j["outcome"].is_string() &&
             ParseOutcome(j["outcome"].get<std::string>(), &c.outcome) && j.contains("scale") &&
             j["scale"].is_string() && ParseScale(j["scale"].get<std::string>(), &c.scale) &&
             j.contains("score") && j["score"].is_number_integer() && j.contains("turn_score") &&
             j["turn_score"].is_number_integer() && j.contains("reason") && j["reason"].is_string();
        if (ok) {
          c.score = j["score"].get<int>();
          c.turn_score = j["turn_score"].get<int>();
          c.reason = j["reason"].get<std::string>();
          cache->judgments_[j["key"].get<std::string>()] = std::move(c);
        }
      } else {
        ok = false;
      }
      if (!ok) ++cache->ignored_lines_;
    }
  }
  if (torn) BF_RETURN_IF_ERROR(cache->Append(""));  // end the torn line
  return cache;
}

FixCache::~FixCache() {
  if (f_ != nullptr) std::fclose(f_);
}

const CachedFix* FixCache::FindFix(const std::string& key) const {
  auto it = fixes_.find(key);
  return it == fixes_.end() ? nullptr : &it->second;
}

const CachedJudgment* FixCache::FindJudgment(const std::string& key) const {
  auto it = judgments_.find(key);
  return it == judgments_.end() ? nullptr : &it->second;
}

Status FixCache::Append(const std::string& line) {
  if (!error_.ok()) return error_;
  const std::string text = line + "\n";
  if (std::fwrite(text.data(), 1, text.size(), f_) != text.size()) {
    error_ = Status::IOError("cache " + path_ + ": write failed: " + std::strerror(errno));
  }
  return error_;
}

Status FixCache::AddFix(const std::string& key, const std::string& conversation_key,
                        const std::string& fixer, const CachedFix& fix) {
  json j = {{"type", "fix"},  {"key", key},         {"conversation_key", conversation_key},
            {"fixer", fixer}, {"reply", fix.reply}, {"finish_reason", fix.finish_reason}};
  fixes_[key] = fix;
  return Append(DumpJson(j));
}

Status FixCache::AddJudgment(const std::string& key, const std::string& conversation_key,
                             const std::string& judge, const CachedJudgment& judgment) {
  json j = {{"type", "judgment"},
            {"key", key},
            {"conversation_key", conversation_key},
            {"judge", judge},
            {"outcome", OutcomeName(judgment.outcome)},
            {"scale", ScaleName(judgment.scale)},
            {"score", judgment.score},
            {"turn_score", judgment.turn_score},
            {"reason", judgment.reason}};
  judgments_[key] = judgment;
  return Append(DumpJson(j));
}

Status FixCache::Flush() {
  if (!error_.ok()) return error_;
  if (std::fflush(f_) != 0) {
    error_ = Status::IOError("cache " + path_ + ": flush failed: " + std::strerror(errno));
  }
  return error_;
}

}  // namespace breakfix::curate
