#include "engine/plugin_api.h"

extern "C" __attribute__((visibility("default"))) const breakfix::EnginePluginApi*
breakfix_engine_plugin_v1() {
  static const breakfix::EnginePluginApi api{BREAKFIX_VERSION,
                                             &breakfix::LoadEngine,
                                             &breakfix::NewLocalChatModel,
                                             &breakfix::ChatTemplateName,
                                             &breakfix::Train,
                                             &breakfix::InitModel,
                                             &breakfix::ScoreReplies,
                                             &breakfix::EvaluatePreferenceLoss,
                                             &breakfix::engine::TrainBpeTokenizer};
  return &api;
}
