// Access to the in-process engine from the CLI through the libbreakfix-engine.so plugin.
#ifndef BREAKFIX_TOOLS_ENGINE_PLUGIN_H_
#define BREAKFIX_TOOLS_ENGINE_PLUGIN_H_

#include <memory>
#include <string>

#include "breakfix/engine.h"
#include "breakfix/train.h"
#include "engine/plugin_api.h"

namespace breakfix::cli {

// The plugin's table, loaded on first use: $BREAKFIX_ENGINE_PLUGIN, else libbreakfix-engine.so
// next to the breakfix executable, else ../lib/breakfix/ relative to it (an installed layout).
// The error says where it looked and why loading failed.
Result<const EnginePluginApi*> EnginePlugin();

// LoadEngine / NewLocalChatModel through the plugin.
Result<std::unique_ptr<Engine>> LoadEngineViaPlugin(const std::string& path,
                                                    const EngineOptions& options);
Result<std::unique_ptr<ChatModel>> NewLocalChatModelViaPlugin(std::shared_ptr<Engine> engine,
                                                              std::string name);

// The trainer (breakfix/train.h) through the plugin.
Result<TrainResult> TrainViaPlugin(const TrainOptions& options, const TrainData& data,
                                   const TrainProgressFn& progress, const std::atomic<bool>* stop);
Status InitModelViaPlugin(const InitModelOptions& options);
Result<std::vector<ReplyScore>> ScoreRepliesViaPlugin(const std::string& model_path,
                                                      const std::vector<ScoredReply>& items,
                                                      const ScoreOptions& options);
Result<PreferenceLossReport> EvaluatePreferenceLossViaPlugin(
    const TrainOptions& options, const std::vector<PreferencePair>& pairs);
// The byte-level BPE trainer (src/engine/bpe_trainer.h) through the plugin.
Status TrainTokenizerViaPlugin(const std::vector<std::string>& texts,
                               const engine::BpeTrainOptions& options, const std::string& out_dir);

}  // namespace breakfix::cli

#endif  // BREAKFIX_TOOLS_ENGINE_PLUGIN_H_
