// The engine plugin's entry point. libbreakfix-engine.so exports one C function,
// breakfix_engine_plugin_v1(), returning this table; the CLI resolves it with dlsym() (see
// tools/engine_plugin.cc), so the main binary does not link libtorch.
#ifndef BREAKFIX_ENGINE_PLUGIN_API_H_
#define BREAKFIX_ENGINE_PLUGIN_API_H_

#include <memory>
#include <string>

#include "breakfix/engine.h"
#include "breakfix/train.h"
#include "engine/bpe_trainer.h"

namespace breakfix {

// Both sides are built from the same sources by the same compiler; the version string guards
// against a stale plugin from another build.
struct EnginePluginApi {
  const char* breakfix_version;
  Result<std::unique_ptr<Engine>> (*load_engine)(const std::string& path,
                                                 const EngineOptions& options);
  std::unique_ptr<ChatModel> (*new_local_chat_model)(std::shared_ptr<Engine> engine,
                                                     std::string name);
  const char* (*chat_template_name)(ChatTemplateKind kind);
  // The trainer (breakfix/train.h): SFT, DPO and IPO through one entry, selected by
  // options.method.
  Result<TrainResult> (*train)(const TrainOptions& options, const TrainData& data,
                               const TrainProgressFn& progress, const std::atomic<bool>* stop);
  Status (*init_model)(const InitModelOptions& options);
  Result<std::vector<ReplyScore>> (*score_replies)(const std::string& model_path,
                                                   const std::vector<ScoredReply>& items,
                                                   const ScoreOptions& options);
  Result<PreferenceLossReport> (*evaluate_preference_loss)(
      const TrainOptions& options, const std::vector<PreferencePair>& pairs);
  Status (*train_tokenizer)(const std::vector<std::string>& texts,
                            const engine::BpeTrainOptions& options, const std::string& out_dir);
};

inline constexpr const char* kEnginePluginSymbol = "breakfix_engine_plugin_v1";

}  // namespace breakfix

extern "C" const breakfix::EnginePluginApi* breakfix_engine_plugin_v1();

#endif  // BREAKFIX_ENGINE_PLUGIN_API_H_
