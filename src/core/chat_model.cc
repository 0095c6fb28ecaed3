#include "breakfix/chat_model.h"

#include <condition_variable>
#include <mutex>
#include <optional>

namespace breakfix {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kSystem:
      return "system";
    case Role::kUser:
      return "user";
    case Role::kAssistant:
      return "assistant";
  }
  return "user";
}

Result<Role> ParseRole(const std::string& name) {
  if (name == "system") return Role::kSystem;
  if (name == "user") return Role::kUser;
  if (name == "assistant") return Role::kAssistant;
  return Status::InvalidArgument("unknown role \"" + name +
                                 "\": expected \"system\", \"user\" or \"assistant\"");
}

Result<ChatResponse> ChatModel::ChatSync(ChatRequest request) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<ChatResponse>> out;
  Chat(std::move(request), [&](Result<ChatResponse> r) {
    std::lock_guard<std::mutex> lock(mu);
    out.emplace(std::move(r));
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return out.has_value(); });
  return std::move(*out);
}

}  // namespace breakfix
