// fake-openai: serves a scripted OpenAI-compatible Chat Completions API on 127.0.0.1 until
// SIGTERM or SIGINT, for end-to-end tests and benchmarks of breakfix against a known "model".
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "breakfix/env.h"
#include "testing/fake_openai_server.h"
#include "testing/script_responder.h"

int main(int argc, char** argv) {
  std::string script_path;
  breakfix::FakeServerOptions server_options;
  std::string port_file;

  CLI::App app{
      "fake-openai: a loopback OpenAI-compatible chat server driven by a YAML script.\n"
      "Serves POST /v1/chat/completions (any path ending in /chat/completions), GET /v1/models "
      "and\n"
      "GET /health on 127.0.0.1. Rules in the script pick replies, HTTP errors, delays and faults\n"
      "(malformed_json, truncated_body, close_without_response, hang, slow_body); requests no "
      "rule\n"
      "matches get \"Scripted reply <8 hex>\", a hash of the messages. Runs until SIGTERM/SIGINT,\n"
      "then exits 0. See src/testing/script_responder.h for the script format."};
  app.add_option("--script", script_path,
                 "YAML script of reply rules (without it every request gets the hashed default)")
      ->check(CLI::ExistingFile);
  app.add_option("--port", server_options.port, "TCP port to bind on 127.0.0.1; 0 = any free port")
      ->default_val(server_options.port)
      ->check(CLI::Range(0, 65535));
  app.add_option("--port-file", port_file,
                 "write the bound port here (atomically) once the server is accepting connections");
  CLI11_PARSE(app, argc, argv);

  std::unique_ptr<breakfix::ScriptResponder> responder;
  if (script_path.empty()) {
    responder = std::make_unique<breakfix::ScriptResponder>(std::vector<breakfix::ScriptRule>{});
  } else {
    auto loaded = breakfix::ScriptResponder::FromFile(script_path);
    if (!loaded.ok()) {
      std::fprintf(stderr, "fake-openai: %s\n", loaded.status().ToString().c_str());
      return 2;
    }
    responder = std::move(*loaded);
  }

  // Block the stop signals before the server thread starts, so only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  breakfix::FakeOpenAIServer server(responder->AsResponder(), server_options);
  breakfix::Status started = server.Start();
  if (!started.ok()) {
    std::fprintf(stderr, "fake-openai: %s\n", started.ToString().c_str());
    return 1;
  }
  if (!port_file.empty()) {
    breakfix::Status written =
        breakfix::Env::Default()->WriteFileAtomic(port_file, std::to_string(server.port()) + "\n");
    if (!written.ok()) {
      std::fprintf(stderr, "fake-openai: --port-file: %s\n", written.ToString().c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "fake-openai: listening on %s\n", server.base_url().c_str());

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  server.Stop();
  std::fprintf(stderr, "fake-openai: stopped by signal %d after %lld requests\n", signal_number,
               static_cast<long long>(server.total_requests()));
  return 0;
}
