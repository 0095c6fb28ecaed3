// breakfix train: fine-tune a local model (sft, dpo, ipo) or write a new random one (init).
// The trainer itself runs in the engine plugin (libtorch); this file reads flags and data files.
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "breakfix/train.h"
#include "cli_common.h"
#include "engine_plugin.h"

namespace breakfix::cli {
namespace {

using Json = nlohmann::json;

// --- data files ------------------------------------------------------------------------------

std::string Where(const std::string& path, int line) { return path + ":" + std::to_string(line); }

Result<std::vector<Message>> ParseMessages(const Json& j, const std::string& where,
                                           const std::string& field) {
  if (!j.is_array()) {
    return Status::InvalidArgument(where + ": field '" + field + "' is " + j.type_name() +
                                   ", expected a list of {\"role\", \"content\"} objects");
  }
  std::vector<Message> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const Json& m = j[i];
    const std::string at = where + ": " + field + "[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string()) {
      return Status::InvalidArgument(at +
                                     ": expected an object with string fields 'role' and "
                                     "'content'");
    }
    auto role = ParseRole(m["role"].get<std::string>());
    if (!role.ok()) return role.status().WithContext(at);
    out.push_back(Message{*role, m["content"].get<std::string>()});
  }
  return out;
}

// Reads a JSONL file line by line; `parse` turns each object into a record. Blank lines are
// skipped; every error names the file and line.
template <typename Record, typename Parse>
Result<std::vector<Record>> ReadJsonl(const std::string& path, Parse parse) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument(path + ": cannot open the data file");
  std::vector<Record> out;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = Where(path, number);
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Status::InvalidArgument(where + ": not valid JSON");
    if (!j.is_object()) return Status::InvalidArgument(where + ": expected a JSON object");
    std::string id = where;
    if (j.contains("id") && (j["id"].is_string() || j["id"].is_number_integer())) {
      id = j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
    }
    BF_ASSIGN_OR_RETURN(Record r, parse(j, where, id));
    out.push_back(std::move(r));
  }
  if (out.empty()) return Status::InvalidArgument(path + ": the data file has no records");
  return out;
}

// SFT: {"messages": [{"role": ..., "content": ...}, ...], "id": optional}.
Result<std::vector<ChatExample>> ReadSftFile(const std::string& path) {
  return ReadJsonl<ChatExample>(
      path,
      [](const Json& j, const std::string& where, const std::string& id) -> Result<ChatExample> {
        if (!j.contains("messages")) {
          return Status::InvalidArgument(where + ": field 'messages' is missing");
        }
        ChatExample e;
        e.id = id;
        BF_ASSIGN_OR_RETURN(e.messages, ParseMessages(j["messages"], where, "messages"));
        return e;
      });
}

// A reply given as text or as a list whose last message is the assistant's.
Result<std::vector<Message>> ReplyMessages(const Json& j, const std::string& where,
                                           const std::string& field) {
  if (j.is_string()) return std::vector<Message>{Message{Role::kAssistant, j.get<std::string>()}};
  BF_ASSIGN_OR_RETURN(std::vector<Message> list, ParseMessages(j, where, field));
  if (list.empty() || list.back().role != Role::kAssistant) {
    return Status::InvalidArgument(where + ": field '" + field +
                                   "' must end with an assistant message");
  }
  return list;
}

// DPO/IPO, TRL style: {"prompt": [messages] or "text", "chosen": [messages] or "text",
// "rejected": same}. Without "prompt", chosen and rejected are whole conversations sharing all
// but their last (assistant) message.
Result<std::vector<PreferencePair>> ReadPairFile(const std::string& path) {
  return ReadJsonl<PreferencePair>(
      path,
      [](const Json& j, const std::string& where, const std::string& id) -> Result<PreferencePair> {
        for (const char* field : {"chosen", "rejected"}) {
          if (!j.contains(field)) {
            return Status::InvalidArgument(where + ": field '" + field + "' is missing");
          }
        }
        PreferencePair p;
        p.id = id;
        p.kind = kPairKindImported;
        BF_ASSIGN_OR_RETURN(std::vector<Message> chosen,
                            ReplyMessages(j["chosen"], where, "chosen"));
        BF_ASSIGN_OR_RETURN(std::vector<Message> rejected,
                            ReplyMessages(j["rejected"], where, "rejected"));
        std::vector<Message> implicit_prompt(chosen.begin(), chosen.end() - 1);
        if (j.contains("prompt")) {
          const Json& prompt = j["prompt"];
          if (prompt.is_string()) {
            p.prompt = {Message{Role::kUser, prompt.get<std::string>()}};
          } else {
            BF_ASSIGN_OR_RETURN(p.prompt, ParseMessages(prompt, where, "prompt"));
          }
          // TRL also allows the chosen/rejected lists to carry more turns after the prompt.
          p.prompt.insert(p.prompt.end(), implicit_prompt.begin(), implicit_prompt.end());
        } else {
          p.prompt = implicit_prompt;
        }
        if (std::vector<Message>(rejected.begin(), rejected.end() - 1) != implicit_prompt) {
          return Status::InvalidArgument(where +
                                         ": 'chosen' and 'rejected' differ before their last "
                                         "message; a pair must share its prompt");
        }
        if (p.prompt.empty()) {
          return Status::InvalidArgument(where +
                                         ": no prompt (field 'prompt' is missing and "
                                         "'chosen' holds only the reply)");
        }
        p.chosen = chosen.back().content;
        p.rejected = rejected.back().content;
        return p;
      });
}

// --- train sft/dpo/ipo -------------------------------------------------------------------------

struct TrainFlags {
  TrainOptions options;
  std::string data;
  std::string lora_targets;
  int log_every = 10;
  bool quiet = false;
};

std::string StepLine(const TrainStepLog& s, TrainMethod method) {
  char buf[320];
  int n = std::snprintf(buf, sizeof(buf),
                        "step %lld/%lld epoch %d loss %.4f lr %.3g grad %.3g tok/s %.0f",
                        static_cast<long long>(s.step), static_cast<long long>(s.total_steps),
                        s.epoch, s.loss, s.learning_rate, s.grad_norm, s.tokens_per_s);
  if (method != TrainMethod::kSft && n > 0 && n < static_cast<int>(sizeof(buf))) {
    std::snprintf(buf + n, sizeof(buf) - n, " margin %.4f acc %.2f logp c/r %.2f/%.2f",
                  s.reward_margin, s.accuracy, s.chosen_logp, s.rejected_logp);
  }
  return buf;
}

int RunTrain(TrainFlags& f) {
  TrainOptions& o = f.options;
  if (!f.lora_targets.empty()) o.lora.targets = SplitList(f.lora_targets);
  TrainData data;
  if (o.method == TrainMethod::kSft) {
    auto examples = ReadSftFile(f.data);
    if (!examples.ok()) return Fail(examples.status().WithContext("--data"));
    data.examples = std::move(examples).value();
  } else {
    auto pairs = ReadPairFile(f.data);
    if (!pairs.ok()) return Fail(pairs.status().WithContext("--data"));
    data.pairs = std::move(pairs).value();
  }
  const char* method = TrainMethodName(o.method);
  if (!f.quiet) {
    std::fprintf(stderr, "breakfix train %s: %s, %zu %s from %s -> %s\n", method,
                 o.base_model.c_str(),
                 o.method == TrainMethod::kSft ? data.examples.size() : data.pairs.size(),
                 o.method == TrainMethod::kSft ? "example(s)" : "pair(s)", f.data.c_str(),
                 o.output_dir.c_str());
  }
  const int log_every = std::max(1, f.log_every);
  TrainProgressFn progress = [&](const TrainProgress& p) {
    if (f.quiet) return;
    if (!p.is_step) {
      std::fprintf(stderr, "breakfix train: %s\n", p.note.c_str());
    } else if (p.step.step % log_every == 0 || p.step.step == p.step.total_steps ||
               p.step.step == 1) {
      std::fprintf(stderr, "breakfix train: %s\n", StepLine(p.step, o.method).c_str());
    }
  };

  StopOnSignals signals;
  auto result = TrainViaPlugin(o, data, progress, signals.flag());
  signals.Restore();
  // A model or directory the user named that does not exist is an input error (exit 2).
  if (!result.ok()) return FailLookup(result.status());
  if (result->interrupted) {
    std::fprintf(stderr,
                 "breakfix train: interrupted after step %lld of %lld; run the same command to "
                 "resume%s%s\n",
                 static_cast<long long>(result->steps), static_cast<long long>(result->total_steps),
                 result->last_checkpoint.empty() ? "" : " from ", result->last_checkpoint.c_str());
    return kExitFailed;
  }
  if (result->already_complete) {
    std::printf("already trained (%lld steps): %s\n", static_cast<long long>(result->steps),
                result->final_model.c_str());
    return kExitOk;
  }
  std::printf("trained %lld steps (%lld trainable parameters%s): %s\n",
              static_cast<long long>(result->steps),
              static_cast<long long>(result->trainable_parameters),
              result->resumed_from > 0
                  ? (", resumed from step " + std::to_string(result->resumed_from)).c_str()
                  : "",
              result->final_model.c_str());
  std::printf("load it with --target local:%s\n", result->final_model.c_str());
  return kExitOk;
}

using ChosenCommand = std::shared_ptr<std::vector<CommandFn>>;

void AddTrainMethod(CLI::App* train, TrainMethod method, const ChosenCommand& chosen,
                    const char* description) {
  auto flags = std::make_shared<TrainFlags>();
  TrainOptions& o = flags->options;
  o.method = method;
  CLI::App* cmd = train->add_subcommand(TrainMethodName(method), description);
  const bool preference = method != TrainMethod::kSft;
  cmd->add_option("--model", o.base_model, "Base model: Hugging Face directory or .gguf file")
      ->required();
  cmd->add_option("--data", flags->data,
                  preference ? "JSONL of pairs: {\"prompt\", \"chosen\", \"rejected\"} (text or "
                               "message lists)"
                             : "JSONL of {\"messages\": [{\"role\", \"content\"}, ...]}")
      ->required();
  cmd->add_option("--out", o.output_dir,
                  "Output directory (checkpoints, final/, train_log.jsonl); rerun to resume")
      ->required();
  if (preference) {
    cmd->add_option("--reference", o.reference_model, "Reference model (default: the base model)");
    cmd->add_option("--beta", o.beta, "DPO/IPO beta")->capture_default_str();
  }
  cmd->add_option("--chat-template", o.chat_template,
                  "Chat template instead of the model's: phi3, llama2, llama3, chatml, mistral, "
                  "zephyr");
  cmd->add_option("--lr", o.learning_rate, "Peak learning rate")->capture_default_str();
  cmd->add_option("--min-lr-ratio", o.min_lr_ratio, "Cosine decay floor, as a fraction of --lr")
      ->capture_default_str();
  cmd->add_option("--warmup-steps", o.warmup_steps, "Linear warmup steps")->capture_default_str();
  cmd->add_option("--epochs", o.epochs, "Passes over the data")->capture_default_str();
  cmd->add_option("--max-steps", o.max_steps, "Optimiser steps (0 = --epochs decide)")
      ->capture_default_str();
  cmd->add_option("--batch-size", o.batch_size,
                  preference ? "Pairs per forward pass" : "Sequences per forward pass")
      ->capture_default_str();
  cmd->add_option("--grad-accum", o.grad_accum, "Forward passes per optimiser step")
      ->capture_default_str();
  cmd->add_option("--weight-decay", o.weight_decay, "AdamW weight decay (matrices only)")
      ->capture_default_str();
  cmd->add_option("--max-grad-norm", o.max_grad_norm, "Gradient clipping norm (0 = off)")
      ->capture_default_str();
  cmd->add_option("--max-seq-len", o.max_seq_len,
                  "Tokens per sequence; longer prompts lose their oldest tokens")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of data order, LoRA init and dropout")
      ->capture_default_str();
  cmd->add_flag("--group-by-length", o.group_by_length,
                "Batch sequences of similar length together (less padding, faster on CPU)");
  cmd->add_option("--checkpoint-every", o.checkpoint_every,
                  "Steps between checkpoints (0 = only the final model)")
      ->capture_default_str();
  cmd->add_option("--threads", o.threads, "CPU threads")->capture_default_str();
  cmd->add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_flag("--bf16", o.bf16,
                "Mixed precision: bfloat16 matrix products, float32 master weights");
  cmd->add_option("--lora-rank", o.lora.rank, "LoRA rank (0 = full fine-tuning)")
      ->capture_default_str();
  cmd->add_option("--lora-alpha", o.lora.alpha, "LoRA alpha (update scale alpha/rank)")
      ->capture_default_str();
  cmd->add_option("--lora-targets", flags->lora_targets,
                  "Comma-separated projections to adapt (default wq,wk,wv,wo; any of wq wk wv "
                  "wo w1 w2 w3)");
  cmd->add_option("--lora-dropout", o.lora.dropout, "Dropout on the adapters' input")
      ->capture_default_str();
  cmd->add_option("--log-every", flags->log_every, "Print a progress line every N steps")
      ->capture_default_str();
  cmd->add_flag("--quiet", flags->quiet, "No progress output");
  cmd->callback([flags, chosen] { chosen->push_back([flags] { return RunTrain(*flags); }); });
}

// --- train init ------------------------------------------------------------------------------

struct InitFlags {
  InitModelOptions options;
  std::string config;
  ModelShape shape;  // from flags; only those given override the config file
  std::vector<std::pair<CLI::Option*, std::function<void(ModelShape&)>>> overrides;
};

Status ApplyYamlShape(const std::string& path, ModelShape* shape) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(path + ":" + std::to_string(e.mark.line + 1) + ":" +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) return Status::InvalidArgument(path + ": expected a map of model fields");
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    const std::string at = path + ":" + std::to_string(v.Mark().line + 1) + ": field '" + key + "'";
    try {
      if (key == "architecture") {
        shape->architecture = v.as<std::string>();
      } else if (key == "vocab_size") {
        shape->vocab_size = v.as<int>();
      } else if (key == "hidden_size") {
        shape->hidden_size = v.as<int>();
      } else if (key == "n_layers") {
        shape->n_layers = v.as<int>();
      } else if (key == "n_heads") {
        shape->n_heads = v.as<int>();
      } else if (key == "n_kv_heads") {
        shape->n_kv_heads = v.as<int>();
      } else if (key == "head_dim") {
        shape->head_dim = v.as<int>();
      } else if (key == "ffn_size") {
        shape->ffn_size = v.as<int>();
      } else if (key == "context_length") {
        shape->context_length = v.as<int>();
      } else if (key == "rope_theta") {
        shape->rope_theta = v.as<double>();
      } else if (key == "rms_eps") {
        shape->rms_eps = v.as<double>();
      } else if (key == "tied_embeddings") {
        shape->tied_embeddings = v.as<bool>();
      } else if (key == "qkv_bias") {
        shape->qkv_bias = v.as<bool>();
      } else {
        return Status::InvalidArgument(
            at +
            " is unknown (expected architecture, vocab_size, hidden_size, n_layers, "
            "n_heads, n_kv_heads, head_dim, ffn_size, context_length, rope_theta, rms_eps, "
            "tied_embeddings, qkv_bias)");
      }
    } catch (const YAML::Exception&) {
      return Status::InvalidArgument(at + " has the wrong type");
    }
  }
  return Status::OK();
}

int RunInit(InitFlags& f) {
  ModelShape shape = f.options.shape;
  if (!f.config.empty()) {
    Status s = ApplyYamlShape(f.config, &shape);
    if (!s.ok()) return Fail(s.WithContext("--config"));
  }
  for (auto& [option, apply] : f.overrides) {
    if (option->count() > 0) apply(shape);
  }
  f.options.shape = shape;
  Status s = InitModelViaPlugin(f.options);
  if (!s.ok()) return Fail(s);
  std::printf("initialised %s model in %s\n", shape.architecture.c_str(),
              f.options.output_dir.c_str());
  return kExitOk;
}

void AddInit(CLI::App* train, const ChosenCommand& chosen) {
  auto flags = std::make_shared<InitFlags>();
  CLI::App* cmd = train->add_subcommand(
      "init", "Write a randomly initialised model (Hugging Face layout) with a given tokenizer");
  cmd->add_option("--config", flags->config, "YAML file of model fields (flags override it)");
  cmd->add_option("--tokenizer", flags->options.tokenizer_dir,
                  "Hugging Face directory with tokenizer.json or tokenizer.model")
      ->required();
  cmd->add_option("--out", flags->options.output_dir, "Output directory")->required();
  cmd->add_option("--seed", flags->options.seed, "Initialisation seed")->capture_default_str();
  cmd->add_option("--init-std", flags->options.init_std, "Standard deviation of the weights")
      ->capture_default_str();
  ModelShape& d = flags->options.shape;  // defaults shown; values land in flags->shape
  auto add_int = [&](const char* name, int ModelShape::*field, int def, const char* help) {
    CLI::Option* opt = cmd->add_option(name, flags->shape.*field, help)->default_val(def);
    flags->overrides.push_back(
        {opt, [field, flags](ModelShape& s) { s.*field = flags->shape.*field; }});
  };
  cmd->add_option("--architecture", flags->shape.architecture, "llama, mistral, qwen2 or phi3")
      ->default_val(d.architecture);
  flags->overrides.push_back({cmd->get_option("--architecture"), [flags](ModelShape& s) {
                                s.architecture = flags->shape.architecture;
                              }});
  add_int("--vocab-size", &ModelShape::vocab_size, d.vocab_size, "0 = the tokenizer's size");
  add_int("--hidden-size", &ModelShape::hidden_size, d.hidden_size, "Hidden size");
  add_int("--layers", &ModelShape::n_layers, d.n_layers, "Transformer layers");
  add_int("--heads", &ModelShape::n_heads, d.n_heads, "Attention heads");
  add_int("--kv-heads", &ModelShape::n_kv_heads, d.n_kv_heads, "Key/value heads (0 = --heads)");
  add_int("--head-dim", &ModelShape::head_dim, d.head_dim, "0 = hidden / heads");
  add_int("--ffn-size", &ModelShape::ffn_size, d.ffn_size, "0 = 8/3 hidden, rounded up to 32");
  add_int("--context-length", &ModelShape::context_length, d.context_length, "Context length");
  CLI::Option* tied = cmd->add_flag("--tied-embeddings", flags->shape.tied_embeddings,
                                    "Share the embedding and output matrices");
  flags->overrides.push_back({tied, [flags](ModelShape& s) { s.tied_embeddings = true; }});
  CLI::Option* bias =
      cmd->add_flag("--qkv-bias", flags->shape.qkv_bias, "Biases on q/k/v (qwen2 style)");
  flags->overrides.push_back({bias, [flags](ModelShape& s) { s.qkv_bias = true; }});
  cmd->callback([flags, chosen] { chosen->push_back([flags] { return RunInit(*flags); }); });
}

// --- train tokenizer ---------------------------------------------------------------------------

struct TokenizerFlags {
  engine::BpeTrainOptions options;
  std::vector<std::string> data;
  std::string special;
  std::string out;
};

// Every string value of a JSON document, depth first (message contents, personas, documents).
void CollectStrings(const Json& j, std::vector<std::string>* out) {
  if (j.is_string()) {
    out->push_back(j.get<std::string>());
  } else if (j.is_array() || j.is_object()) {
    for (const Json& v : j) CollectStrings(v, out);
  }
}

// A .jsonl file contributes the string values of each line; any other file is one text.
Status ReadTokenizerTexts(const std::string& path, std::vector<std::string>* texts) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument(path + ": cannot open the text file");
  const bool jsonl = path.size() >= 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
  if (!jsonl) {
    texts->emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return Status::OK();
  }
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Status::InvalidArgument(Where(path, number) + ": not valid JSON");
    CollectStrings(j, texts);
  }
  return Status::OK();
}

int RunTokenizer(TokenizerFlags& f) {
  std::vector<std::string> texts;
  for (const std::string& path : f.data) {
    Status s = ReadTokenizerTexts(path, &texts);
    if (!s.ok()) return Fail(s.WithContext("--data"));
  }
  if (!f.special.empty()) f.options.special_tokens = SplitList(f.special);
  Status s = TrainTokenizerViaPlugin(texts, f.options, f.out);
  if (!s.ok()) return Fail(s);
  std::printf("trained a %d-token byte-level BPE tokenizer on %zu text(s): %s\n",
              f.options.vocab_size, texts.size(), f.out.c_str());
  return kExitOk;
}

void AddTokenizer(CLI::App* train, const ChosenCommand& chosen) {
  auto flags = std::make_shared<TokenizerFlags>();
  engine::BpeTrainOptions& o = flags->options;
  CLI::App* cmd = train->add_subcommand(
      "tokenizer",
      "Learn a byte-level BPE tokenizer from text (tokenizer.json + tokenizer_config.json)");
  cmd->add_option("--data", flags->data,
                  "Text files; a .jsonl file contributes every string value of every line")
      ->required();
  cmd->add_option("--out", flags->out, "Output directory")->required();
  cmd->add_option("--vocab-size", o.vocab_size, "Total ids: special tokens + 256 bytes + merges")
      ->capture_default_str();
  cmd->add_option("--min-frequency", o.min_frequency, "Fewest occurrences for a merge")
      ->capture_default_str();
  cmd->add_option("--chat-template", o.chat_template,
                  "phi3, llama2, llama3, chatml, mistral or zephyr (its markers become special "
                  "tokens)")
      ->capture_default_str();
  cmd->add_option("--pretokenizer", o.pretokenizer, "gpt2, llama3 or qwen2")->capture_default_str();
  cmd->add_option("--special", flags->special,
                  "Comma-separated special tokens, ids 0.. in this order (default <|endoftext|>)");
  cmd->add_option("--bos", o.bos_token, "BOS token text (\"\" = none)");
  cmd->add_option("--eos", o.eos_token, "EOS token text")->capture_default_str();
  cmd->callback([flags, chosen] { chosen->push_back([flags] { return RunTokenizer(*flags); }); });
}

}  // namespace

CommandFn AddTrainCommand(CLI::App& app) {
  CLI::App* train = app.add_subcommand(
      "train",
      "Fine-tune a local model (sft, dpo, ipo), initialise a new one (init) or learn a tokenizer "
      "(tokenizer)");
  train->require_subcommand(1);
  auto chosen = std::make_shared<std::vector<CommandFn>>();  // filled by the chosen callback
  AddTrainMethod(train, TrainMethod::kSft, chosen,
                 "Supervised fine-tuning on chat examples (loss on assistant tokens)");
  AddTrainMethod(train, TrainMethod::kDpo, chosen,
                 "Direct preference optimisation on (prompt, chosen, rejected) pairs");
  AddTrainMethod(train, TrainMethod::kIpo, chosen,
                 "Identity preference optimisation on (prompt, chosen, rejected) pairs");
  AddInit(train, chosen);
  AddTokenizer(train, chosen);
  return [chosen] {
    if (chosen->empty()) return Fail(Status::InvalidArgument("train: name a subcommand"));
    return chosen->back()();
  };
}

}  // namespace breakfix::cli
