#include "engine_plugin.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "engine/plugin_api.h"

namespace breakfix::cli {
namespace {

std::string ExecutableDir() {
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

Result<const EnginePluginApi*> Load() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("BREAKFIX_ENGINE_PLUGIN"); env != nullptr && *env != '\0') {
    candidates.push_back(env);
  } else {
    const std::string dir = ExecutableDir();
    candidates.push_back(dir + "/libbreakfix-engine.so");
    candidates.push_back(dir + "/../lib/breakfix/libbreakfix-engine.so");
  }
  std::string tried;
  for (const std::string& path : candidates) {
    if (!std::filesystem::exists(path)) {
      tried += "\n  " + path + ": not found";
      continue;
    }
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      tried += "\n  " + path + ": " + ::dlerror();
      continue;
    }
    auto entry =
        reinterpret_cast<const EnginePluginApi* (*)()>(::dlsym(handle, kEnginePluginSymbol));
    if (entry == nullptr) {
      tried += "\n  " + path + ": no " + kEnginePluginSymbol;
      continue;
    }
    const EnginePluginApi* api = entry();
    if (std::strcmp(api->breakfix_version, BREAKFIX_VERSION) != 0) {
      tried += "\n  " + path + ": built for breakfix " + api->breakfix_version + ", not " +
               BREAKFIX_VERSION;
      continue;
    }
    return api;  // the handle stays open for the life of the process
  }
  return Status::FailedPrecondition(
      "the local model engine (libbreakfix-engine.so) could not be "
      "loaded; looked at:" +
      tried);
}

}  // namespace

Result<const EnginePluginApi*> EnginePlugin() {
  static std::once_flag once;
  static Result<const EnginePluginApi*>* result = nullptr;
  std::call_once(once, [] { result = new Result<const EnginePluginApi*>(Load()); });
  return *result;
}

Result<std::unique_ptr<Engine>> LoadEngineViaPlugin(const std::string& path,
                                                    const EngineOptions& options) {
  BF_ASSIGN_OR_RETURN(const EnginePluginApi* api, EnginePlugin());
  return api->load_engine(path, options);
}

Result<std::unique_ptr<ChatModel>> NewLocalChatModelViaPlugin(std::shared_ptr<Engine> engine,
                                                              std::string name) {
  BF_ASSIGN_OR_RETURN(const EnginePluginApi* api, EnginePlugin());
  return api->new_local_chat_model(std::move(engine), std::move(name));
}

Result<TrainResult> TrainViaPlugin(const TrainOptions& options, const TrainData& data,
                                   const TrainProgressFn& progress, const std::atomic<bool>* stop) {
  BF_ASSIGN_OR_RETURN(const EnginePluginApi* api, EnginePlugin());
  return api->train(options, data, progress, stop);
}

Status InitModelViaPlugin(const InitModelOptions& options) {
  BF_ASSIGN_OR_RETURN(const EnginePluginApi* api, EnginePlugin());
  return api->init_model(options);
}

Result<std::vector<ReplyScore>> ScoreRepliesViaPlugin(const std::string& model_path,
                                                      const std::vector<ScoredReply>& items,
                                                      const ScoreOptions& options) {
  BF_ASSIGN_OR_RETURN(const EnginePluginApi* api, EnginePlugin());
  return api->score_replies(model_path, items, options);
}

Result<PreferenceLossReport> EvaluatePreferenceLossViaPlugin(
    const TrainOptions& options, const std::vector<PreferencePair>& pairs) {
  BF_ASSIGN_OR_RETURN(const EnginePluginApi* api, EnginePlugin());
  return api->evaluate_preference_loss(options, pairs);
}

Status TrainTokenizerViaPlugin(const std::vector<std::string>& texts,
                               const engine::BpeTrainOptions& options, const std::string& out_dir) {
  BF_ASSIGN_OR_RETURN(const EnginePluginApi* api, EnginePlugin());
  return api->train_tokenizer(texts, options, out_dir);
}

}  // namespace breakfix::cli
