// breakfix curate: preference pairs (DPO) and chosen replies (SFT) from judged runs; with
// `import-hh`, pairs from Anthropic's HH-RLHF files; with `convert`, SFT examples from pairs.
#include <yaml-cpp/yaml.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "breakfix/curate.h"
#include "cli_common.h"

namespace breakfix::cli {
namespace {

struct CurateFlags {
  std::string config;
  std::string store = "breakfix.db";
  std::vector<std::string> runs;
  std::string fixer;
  std::string judge;
  std::string out;
  std::string sft_out;
  std::string policy_file;
  std::vector<std::string> thresholds;  // FAMILY=N
  bool no_dedup = false;
  bool no_cache = false;
  bool no_progress = false;
  bool quiet = false;
  CurateOptions options;
};

struct ImportFlags {
  std::string file;
  std::string out;
  std::string sft_out;
  HhRlhfOptions options;
  bool quiet = false;
};

struct ConvertFlags {
  std::string in;
  std::string sft_out;
  bool quiet = false;
};

Result<std::map<std::string, int>> ParseThresholds(const std::vector<std::string>& specs) {
  std::map<std::string, int> out;
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    int value = 0;
    bool ok = eq != std::string::npos && eq > 0 && eq + 1 < spec.size();
    if (ok) {
      try {
        size_t used = 0;
        value = std::stoi(spec.substr(eq + 1), &used);
        ok = used == spec.size() - eq - 1;
      } catch (const std::exception&) {
        ok = false;
      }
    }
    if (!ok) {
      return Status::InvalidArgument("--threshold \"" + spec +
                                     "\": expected FAMILY=N, e.g. "
                                     "jailbreak=1");
    }
    out[spec.substr(0, eq)] = value;
  }
  return out;
}

// The live progress line on stderr: rewritten in place on a terminal, every 10 s otherwise.
class CurateProgressLine {
 public:
  explicit CurateProgressLine(bool enabled)
      : enabled_(enabled), tty_(::isatty(STDERR_FILENO) == 1) {}
  void Update(const CurateProgress& p) {
    if (!enabled_) return;
    if (!tty_ && !p.finished && p.elapsed_s - last_s_ < 10) return;
    last_s_ = p.elapsed_s;
    char line[256];
    std::snprintf(line, sizeof(line),
                  "curate %lld/%lld  kept %lld  dropped %lld  in flight %lld  fixer calls %lld  "
                  "judge calls %lld  tokens %lld",
                  static_cast<long long>(p.done), static_cast<long long>(p.total),
                  static_cast<long long>(p.kept), static_cast<long long>(p.dropped),
                  static_cast<long long>(p.in_flight), static_cast<long long>(p.fixer_calls),
                  static_cast<long long>(p.judge_calls), static_cast<long long>(p.tokens.total()));
    if (tty_) {
      std::fprintf(stderr, "\r%s\x1b[K%s", line, p.finished ? "\n" : "");
    } else {
      std::fprintf(stderr, "%s\n", line);
    }
    std::fflush(stderr);
  }

 private:
  bool enabled_;
  bool tty_;
  double last_s_ = -1e9;
};

std::string Counts(const std::map<std::string, int64_t>& counts) {
  std::string out;
  for (const auto& [name, n] : counts) {
    if (n == 0) continue;
    out += (out.empty() ? "" : ", ") + name + " " + std::to_string(n);
  }
  return out.empty() ? "none" : out;
}

int64_t Sum(const std::map<std::string, int64_t>& counts) {
  int64_t total = 0;
  for (const auto& [name, n] : counts) total += n;
  return total;
}

void PrintSummary(const CurateFlags& flags, const CurateResult& r) {
  std::printf(
      "read %lld units: %lld defects, %lld needless refusals (skipped: %lld unfinished, "
      "%lld unscorable, %lld not benign)\n",
      static_cast<long long>(r.conversations_seen), static_cast<long long>(r.defects_seen),
      static_cast<long long>(r.refusals_seen), static_cast<long long>(r.skipped_unfinished),
      static_cast<long long>(r.skipped_unscorable), static_cast<long long>(r.skipped_not_benign));
  std::printf("kept %lld pairs: %s; over-refusal share %.1f%%\n",
              static_cast<long long>(r.pairs.size()), Counts(r.kept).c_str(),
              100.0 * r.over_refusal_share);
  if (!r.mix_note.empty()) std::printf("mix: %s\n", r.mix_note.c_str());
  std::printf("dropped %lld: %s\n", static_cast<long long>(Sum(r.dropped)),
              Counts(r.dropped).c_str());
  auto near = r.dropped.find(kDropNearDuplicate);
  std::printf("near duplicates removed: %lld (threshold %.2f, %d-word shingles%s)\n",
              static_cast<long long>(near == r.dropped.end() ? 0 : near->second),
              flags.options.dedup_threshold, flags.options.dedup_ngram,
              flags.options.dedup ? "" : ", off");
  std::printf("model calls: fixer %lld, judge %lld; %lld candidates resumed from the cache\n",
              static_cast<long long>(r.progress.fixer_calls),
              static_cast<long long>(r.progress.judge_calls),
              static_cast<long long>(r.progress.resumed));
  if (r.cache_lines_ignored > 0) {
    std::printf("cache: %lld unreadable line(s) ignored (a torn write from an earlier kill)\n",
                static_cast<long long>(r.cache_lines_ignored));
  }
}

int RunCurate(CurateFlags& flags) {
  Env* env = Env::Default();
  auto table = LoadModelTable(flags.config, env);
  if (!table.ok()) return Fail(table.status());
  if (flags.out.empty()) return Fail(Status::InvalidArgument("no output: give --out pairs.jsonl"));
  if (flags.fixer.empty()) {
    return Fail(
        Status::InvalidArgument("no fixer: give --fixer SPEC (the model that writes the "
                                "safe replies)"));
  }
  CurateOptions& options = flags.options;
  options.dedup = !flags.no_dedup;
  auto thresholds = ParseThresholds(flags.thresholds);
  if (!thresholds.ok()) return Fail(thresholds.status());
  options.thresholds = *thresholds;
  if (!flags.policy_file.empty()) {
    auto policy = env->ReadFile(flags.policy_file);
    if (!policy.ok())
      return Fail(Status::InvalidArgument("--policy: " + policy.status().message()));
    if (policy->find_first_not_of(" \t\r\n") == std::string::npos) {
      return Fail(Status::InvalidArgument("--policy: " + flags.policy_file + " is empty"));
    }
    options.policy = *policy;
  }
  if (!flags.no_cache && options.cache_path.empty())
    options.cache_path = flags.out + ".cache.jsonl";
  if (flags.no_cache) options.cache_path.clear();

  auto models = ModelSet::Create(env);
  if (!models.ok()) return Fail(models.status());
  auto fixer_options = ResolveEndpoint(flags.fixer, *table, "fixer");
  if (!fixer_options.ok()) return Fail(fixer_options.status().WithContext("--fixer"));
  auto fixer = (*models)->AddModel(*fixer_options);
  if (!fixer.ok()) return Fail(fixer.status().WithContext("--fixer"));
  Judge* judge = nullptr;
  if (!flags.judge.empty()) {
    auto j = (*models)->AddJudge(flags.judge, *table);
    if (!j.ok()) return Fail(j.status().WithContext("--judge"));
    judge = *j;
  }

  auto store = OpenStore(flags.store, /*create=*/false);
  if (!store.ok()) return FailLookup(store.status());

  StopOnSignals signals;
  CurateProgressLine progress(!flags.no_progress && !flags.quiet);
  auto result = Curate(
      store->get(), flags.runs, *fixer, judge, options,
      [&](const CurateProgress& p) { progress.Update(p); }, signals.flag());
  // No callback may arrive after this point: cancel what is still queued or on the wire.
  (*models)->CancelAll();
  signals.Restore();
  if (!result.ok()) {
    if (result.status().code() == StatusCode::kNotFound) return FailLookup(result.status());
    return Fail(result.status());
  }

  Status written = WritePreferenceJsonl(flags.out, result->pairs);
  if (!written.ok()) return Fail(written);
  if (!flags.sft_out.empty()) {
    std::vector<ChatExample> examples;
    examples.reserve(result->pairs.size());
    for (const PreferencePair& p : result->pairs) examples.push_back(SftExampleFromPair(p));
    written = WriteSftJsonl(flags.sft_out, examples);
    if (!written.ok()) return Fail(written);
  }
  if (!flags.quiet) {
    PrintSummary(flags, *result);
    std::printf("wrote %s (%zu pairs)\n", flags.out.c_str(), result->pairs.size());
    if (!flags.sft_out.empty()) {
      std::printf("wrote %s (%zu examples)\n", flags.sft_out.c_str(), result->pairs.size());
    }
  }
  int64_t failed = 0;
  for (const char* reason : {kDropFixerError, kDropJudgeError}) {
    auto it = result->dropped.find(reason);
    if (it != result->dropped.end()) failed += it->second;
  }
  if (failed > 0) {
    std::fprintf(stderr,
                 "breakfix: %lld candidates were dropped after model errors (first error: %s); "
                 "run the same command again to retry them\n",
                 static_cast<long long>(failed), result->first_error.ToString().c_str());
    return kExitFailed;
  }
  return kExitOk;
}

int RunImportHh(const ImportFlags& flags) {
  if (flags.out.empty()) return Fail(Status::InvalidArgument("no output: give --out pairs.jsonl"));
  if (flags.options.limit < 0) return Fail(Status::InvalidArgument("--limit must be >= 0"));
  auto data = ReadHhRlhf(flags.file, flags.options);
  if (!data.ok()) {
    if (data.status().code() == StatusCode::kNotFound) return FailLookup(data.status());
    return Fail(data.status());
  }
  constexpr size_t kShown = 10;
  for (size_t i = 0; i < data->skipped.size() && i < kShown; ++i) {
    std::fprintf(stderr, "breakfix: skipped %s\n", data->skipped[i].message.c_str());
  }
  if (data->skipped.size() > kShown) {
    std::fprintf(stderr, "breakfix: ... and %zu more malformed lines skipped\n",
                 data->skipped.size() - kShown);
  }
  Status written = WritePreferenceJsonl(flags.out, data->pairs);
  if (!written.ok()) return Fail(written);
  if (!flags.sft_out.empty()) {
    std::vector<ChatExample> examples;
    for (const PreferencePair& p : data->pairs) examples.push_back(SftExampleFromPair(p));
    written = WriteSftJsonl(flags.sft_out, examples);
    if (!written.ok()) return Fail(written);
  }
  if (!flags.quiet) {
    std::printf("read %lld lines of %s: %zu pairs, %zu malformed lines skipped\n",
                static_cast<long long>(data->lines_read), flags.file.c_str(), data->pairs.size(),
                data->skipped.size());
    std::printf("wrote %s (%zu pairs)\n", flags.out.c_str(), data->pairs.size());
    if (!flags.sft_out.empty()) {
      std::printf("wrote %s (%zu examples)\n", flags.sft_out.c_str(), data->pairs.size());
    }
  }
  return kExitOk;
}

int RunConvert(const ConvertFlags& flags) {
  auto pairs = ReadPreferenceJsonl(flags.in);
  if (!pairs.ok()) {
    if (pairs.status().code() == StatusCode::kNotFound) return FailLookup(pairs.status());
    return Fail(pairs.status());
  }
  std::vector<ChatExample> examples;
  examples.reserve(pairs->size());
  for (const PreferencePair& p : *pairs) examples.push_back(SftExampleFromPair(p));
  Status written = WriteSftJsonl(flags.sft_out, examples);
  if (!written.ok()) return Fail(written);
  if (!flags.quiet) {
    std::printf("wrote %s (%zu examples from %s)\n", flags.sft_out.c_str(), examples.size(),
                flags.in.c_str());
  }
  return kExitOk;
}

}  // namespace

CommandFn AddCurateCommand(CLI::App& app) {
  auto flags = std::make_shared<CurateFlags>();
  auto import_flags = std::make_shared<ImportFlags>();
  auto convert_flags = std::make_shared<ConvertFlags>();
  CurateOptions& o = flags->options;

  CLI::App* cmd = app.add_subcommand(
      "curate",
      "Turn judged runs into preference pairs (DPO) and SFT examples: a fixer model rewrites each "
      "defect, the judge checks the rewrite (see docs/curate.md)");
  cmd->require_subcommand(0, 1);
  cmd->add_option("--config", flags->config, "YAML file whose `models:` map names models");
  cmd->add_option("--store", flags->store, "SQLite store holding the runs")->capture_default_str();
  cmd->add_option("--run", flags->runs, "Judged run (name or id) to take defects from (repeat)");
  cmd->add_option("--campaign", o.campaigns,
                  "Red-team campaign (breakfix redteam) whose successful attacks become safety "
                  "pairs (repeat)");
  cmd->add_option("--over-refusal-run", o.over_refusal_runs,
                  "Run of benign prompts to take needless refusals from (repeat)");
  cmd->add_option("--fixer", flags->fixer, "Model that writes the safe replies (name or spec)");
  cmd->add_option("--judge", flags->judge,
                  "Judge for the rewrites (name, spec or \"refusal\"); needed with --run");
  cmd->add_option("--out", flags->out, "Preference pairs JSONL to write");
  cmd->add_option("--sft-out", flags->sft_out, "Also write the chosen replies as SFT JSONL");
  cmd->add_option("--policy", flags->policy_file,
                  "File with the fixer's safety policy (default: the built-in one)");
  cmd->add_option("--seed", o.seed, "Seed for the output order and the fixer's request seeds")
      ->capture_default_str();
  cmd->add_option("--max-in-flight", o.max_in_flight, "Candidates waiting on a model at once")
      ->capture_default_str();
  cmd->add_option("--dedup-threshold", o.dedup_threshold,
                  "Jaccard similarity of prompt+rejected at which a pair is a near duplicate")
      ->capture_default_str();
  cmd->add_option("--dedup-ngram", o.dedup_ngram, "Words per shingle for near duplicates")
      ->capture_default_str();
  cmd->add_flag("--no-dedup", flags->no_dedup, "Keep near duplicates");
  cmd->add_option("--min-help-words", o.min_help_words,
                  "A refusing fix needs this many words of help besides its refusal")
      ->capture_default_str();
  cmd->add_option("--refusal-ok-family", o.refusal_ok_families,
                  "Family where a bare refusal is a complete answer (repeat)");
  cmd->add_option("--refusal-ok-category", o.refusal_ok_categories,
                  "Category where a bare refusal is a complete answer (repeat)");
  cmd->add_option("--threshold", flags->thresholds,
                  "FAMILY=N: defect threshold overriding the run's (repeat)");
  cmd->add_option("--ungroundedness-threshold", o.ungroundedness_threshold,
                  "Ungroundedness score (0-4) that counts as a defect")
      ->capture_default_str();
  cmd->add_option("--over-refusal-min-share", o.over_refusal_min_share,
                  "Least share of over-refusal pairs among those kept (0-1)")
      ->capture_default_str();
  cmd->add_option("--over-refusal-max-share", o.over_refusal_max_share,
                  "Greatest share of over-refusal pairs among those kept (0-1)")
      ->capture_default_str();
  cmd->add_option("--fixer-temperature", o.fixer_sampling.temperature, "Fixer sampling temperature")
      ->capture_default_str();
  cmd->add_option("--fixer-max-tokens", o.fixer_sampling.max_tokens,
                  "Fixer max completion tokens (a reply cut off there is dropped)")
      ->capture_default_str();
  cmd->add_option("--cache", o.cache_path,
                  "Sidecar JSONL of model results for resuming (default: <out>.cache.jsonl)");
  cmd->add_flag("--no-cache", flags->no_cache, "Keep no sidecar cache (nothing is resumable)");
  cmd->add_flag("--no-progress", flags->no_progress, "No progress line");
  cmd->add_flag("--quiet", flags->quiet, "Print nothing but errors");

  CLI::App* import = cmd->add_subcommand(
      "import-hh", "Convert Anthropic HH-RLHF JSONL (or .jsonl.gz) into preference pairs");
  import->add_option("file", import_flags->file, "HH-RLHF file")->required();
  import->add_option("--out", import_flags->out, "Preference pairs JSONL to write");
  import->add_option("--sft-out", import_flags->sft_out, "Also write the chosen replies as SFT");
  import->add_option("--limit", import_flags->options.limit, "Stop after N pairs (0 = all)")
      ->capture_default_str();
  import->add_flag("--strict", import_flags->options.strict,
                   "Fail on the first malformed line instead of skipping it");
  import->add_flag("--quiet", import_flags->quiet, "Print nothing but errors");

  CLI::App* convert =
      cmd->add_subcommand("convert", "Write the chosen replies of preference pairs as SFT JSONL");
  convert->add_option("--in", convert_flags->in, "Preference pairs JSONL")->required();
  convert->add_option("--sft-out", convert_flags->sft_out, "SFT JSONL to write")->required();
  convert->add_flag("--quiet", convert_flags->quiet, "Print nothing but errors");

  return [import, convert, flags, import_flags, convert_flags] {
    if (import->parsed()) return RunImportHh(*import_flags);
    if (convert->parsed()) return RunConvert(*convert_flags);
    return RunCurate(*flags);
  };
}

}  // namespace breakfix::cli
