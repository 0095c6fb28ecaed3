#include "breakfix/chat_model.h"

#include "core/blocking_call.h"

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
  return BlockingCall<ChatResponse>(
      [&](ChatCallback done) { Chat(std::move(request), std::move(done)); });
}

}  // namespace breakfix
