// breakfix serve: an OpenAI-compatible server for a local model (GGUF file or HF directory).
#include <csignal>
#include <cstdio>

#include "breakfix/engine.h"
#include "breakfix/server.h"
#include "cli_common.h"
#include "engine/plugin_api.h"
#include "engine_plugin.h"

namespace breakfix::cli {
namespace {

struct ServeFlags {
  std::string model;
  std::string api_key;
  std::string api_key_env;
  std::string port_file;
  ServerOptions server;
  EngineOptions engine;
};

int RunServeCommand(ServeFlags& f) {
  Env* env = Env::Default();
  if (!f.api_key_env.empty()) {
    auto key = env->GetVar(f.api_key_env);
    if (!key || key->empty()) {
      return Fail(Status::InvalidArgument("--api-key-env: environment variable " + f.api_key_env +
                                          " is not set"));
    }
    f.server.api_key = *key;
  } else if (!f.api_key.empty()) {
    f.server.api_key = f.api_key;
  }
  std::fprintf(stderr, "breakfix serve: loading %s\n", f.model.c_str());
  auto plugin = EnginePlugin();
  if (!plugin.ok()) return Fail(plugin.status());
  auto engine = (*plugin)->load_engine(f.model, f.engine);
  if (!engine.ok()) return FailLookup(engine.status().WithContext("--model"));
  std::shared_ptr<Engine> shared(std::move(*engine));
  const EngineInfo& info = shared->info();
  auto server = OpenAIServer::Create(shared, f.server);
  if (!server.ok()) return Fail(server.status());

  // Block the stop signals in every thread the server starts; this thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Status started = (*server)->Start();
  if (!started.ok()) return Fail(started);
  const int port = (*server)->port();
  std::fprintf(stderr,
               "breakfix serve: %s (%s, %s, %lld parameters, context %d, chat template %s)\n"
               "breakfix serve: listening on http://%s:%d/v1%s\n",
               info.model_id.c_str(), info.architecture.c_str(), info.source_format.c_str(),
               static_cast<long long>(info.parameters), info.context_length,
               (*plugin)->chat_template_name(info.chat_template), f.server.host.c_str(), port,
               f.server.api_key.empty() ? "" : " (API key required)");
  if (!f.port_file.empty()) {
    Status s = env->WriteFileAtomic(f.port_file, std::to_string(port) + "\n");
    if (!s.ok()) return Fail(s);
  }
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "breakfix serve: %s received, finishing %lld request(s) in flight\n",
               sig == SIGINT ? "SIGINT" : "SIGTERM",
               static_cast<long long>((*server)->in_flight()));
  (*server)->Stop();
  shared->Shutdown(/*finish_in_flight=*/false);
  std::fprintf(stderr, "breakfix serve: stopped after %lld request(s)\n",
               static_cast<long long>((*server)->requests_served()));
  return kExitOk;
}

}  // namespace

CommandFn AddServeCommand(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd =
      app.add_subcommand("serve",
                         "Serve a local model (GGUF file or Hugging Face directory) over an "
                         "OpenAI-compatible HTTP API");
  cmd->add_option("--model", flags->model, "GGUF file or Hugging Face model directory")->required();
  cmd->add_option("--host", flags->server.host, "Address to bind (loopback by default)")
      ->capture_default_str();
  cmd->add_option("--port", flags->server.port, "Port (0 = any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--api-key", flags->api_key,
                  "Require this key as 'Authorization: Bearer KEY' (prefer --api-key-env: a key "
                  "on the command line is visible to other local users)");
  cmd->add_option("--api-key-env", flags->api_key_env,
                  "Environment variable holding the required API key");
  cmd->add_option("--model-id", flags->server.model_id,
                  "Model id to report and accept (default: the file or directory name)");
  cmd->add_option("--chat-template", flags->engine.chat_template,
                  "Override the detected chat template: phi3, llama2, llama3, chatml, mistral, "
                  "zephyr");
  cmd->add_option("--max-batch", flags->engine.max_batch,
                  "Sequences decoded together (continuous batching)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--context-length", flags->engine.context_length,
                  "Context length (0 = the model's, capped at 4096)")
      ->capture_default_str();
  cmd->add_option("--device", flags->engine.device,
                  "Where the model runs: cpu, or cuda / cuda:N with a CUDA-enabled libtorch")
      ->default_val("cpu");
  cmd->add_option("--threads", flags->engine.threads, "Tensor library threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--max-pending", flags->server.max_pending,
                  "Requests admitted at once; more get HTTP 429")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--port-file", flags->port_file,
                  "Write the bound port to this file once listening");
  return [flags] { return RunServeCommand(*flags); };
}

}  // namespace breakfix::cli
