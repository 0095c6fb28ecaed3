// breakfix import FORMAT INPUT --out DIR: public safety datasets and generic CSV/JSONL files
// as normalised JSONL plus a ready-to-run suite (breakfix/importers.h, docs/import.md).
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "breakfix/curate.h"
#include "breakfix/importers.h"
#include "cli_common.h"

namespace breakfix::cli {
namespace {

struct ImportFlags {
  std::string format;
  bool quiet = false;
  ImportOptions options;
};

constexpr char kSkipHint[] =
    "\nnothing was written; --skip-bad-rows skips such rows and imports "
    "the rest";

int FailImport(const Status& status) {
  if (status.code() == StatusCode::kNotFound) return FailLookup(status);
  return Fail(status);
}

// HH-RLHF rows are parsed by the curate stage (the same reader as `breakfix curate import-hh`);
// the dataset stage writes what it returns.
int RunHhRlhfImport(const ImportFlags& f, ImportSummary* summary) {
  const ImportOptions& o = f.options;
  HhRlhfOptions hh;
  hh.strict = !o.skip_bad_rows;
  hh.limit = o.limit;
  Result<HhRlhfData> data = ReadHhRlhf(o.input, hh);
  if (!data.ok()) {
    if (data.status().code() == StatusCode::kInvalidArgument) {
      return Fail(Status::InvalidArgument(data.status().message() + kSkipHint));
    }
    return FailImport(data.status());
  }
  std::vector<ImportedConversation> rows;
  rows.reserve(data->pairs.size());
  for (const PreferencePair& p : data->pairs) {
    ImportedConversation c;
    c.id = p.id;
    c.messages = p.prompt;
    c.messages.push_back({Role::kAssistant, p.chosen});
    c.fields.emplace_back("rejected", p.rejected);
    rows.push_back(std::move(c));
  }
  std::vector<SkippedRow> skipped;
  for (const LineIssue& issue : data->skipped) {
    const bool json = issue.message.find("not valid JSON") != std::string::npos;
    skipped.push_back({issue.line, json ? kSkipBadJson : kSkipMalformedPair, issue.message});
  }
  const bool limit_reached = o.limit > 0 && static_cast<int64_t>(data->pairs.size()) >= o.limit;
  Result<ImportSummary> written =
      WriteConversationImport(o, rows, skipped, data->lines_read, limit_reached, Env::Default());
  if (!written.ok()) return FailImport(written.status());
  *summary = std::move(written).value();
  const std::string pairs_path = (std::filesystem::path(o.out_dir) / "pairs.jsonl").string();
  Status pairs = WritePreferenceJsonl(pairs_path, data->pairs);
  if (!pairs.ok()) return Fail(pairs);
  summary->files.push_back({pairs_path, std::to_string(data->pairs.size()) + " preference pairs"});
  return kExitOk;
}

int RunImport(ImportFlags& f) {
  Result<DatasetFormat> format = ParseDatasetFormat(f.format);
  if (!format.ok()) return Fail(format.status());
  f.options.format = *format;
  Status valid = ValidateImportOptions(f.options);
  if (!valid.ok()) return Fail(valid);
  ImportSummary summary;
  if (*format == DatasetFormat::kHhRlhf) {
    const int code = RunHhRlhfImport(f, &summary);
    if (code != kExitOk) return code;
  } else {
    Result<ImportSummary> result = ImportDataset(f.options, Env::Default());
    if (!result.ok()) return FailImport(result.status());
    summary = std::move(result).value();
  }
  if (!f.quiet) std::printf("%s", FormatImportSummary(summary).c_str());
  return kExitOk;
}

}  // namespace

CommandFn AddImportCommand(CLI::App& app) {
  auto flags = std::make_shared<ImportFlags>();
  ImportOptions& o = flags->options;
  CLI::App* cmd = app.add_subcommand(
      "import",
      "Import a safety dataset (HarmBench, AdvBench, JBB, XSTest, Do-Not-Answer, "
      "SimpleSafetyTests, HH-RLHF) or a mapped CSV/JSONL file as JSONL plus a suite (see "
      "docs/import.md)");
  std::string formats;
  for (const std::string& name : DatasetFormatNames()) {
    formats += (formats.empty() ? "" : " | ") + name;
  }
  cmd->add_option("format", flags->format, formats)->required();
  cmd->add_option("input", o.input, "File to import")->required();
  cmd->add_option("--out", o.out_dir, "Directory for the outputs (created when missing)")
      ->required();
  cmd->add_option("--map", o.mappings,
                  "csv/jsonl: FIELD=COLUMN, FIELD one of id, prompt, response, messages, "
                  "category, label, or an extra field name (repeat)")
      ->allow_extra_args(false);  // one FIELD=COLUMN per --map, so positionals may follow
  cmd->add_option("--encoding", o.encoding, "utf-8 (BOM or not), latin1, cp1252 or macroman")
      ->capture_default_str();
  cmd->add_flag("--skip-bad-rows", o.skip_bad_rows,
                "Skip bad rows (listed in the summary and skipped.jsonl) instead of stopping at "
                "the first");
  cmd->add_option("--limit", o.limit, "Stop after writing N records (0 = all)")
      ->capture_default_str();
  cmd->add_option("--name", o.suite_name,
                  "Name of the suite and its family (default: the format, or the file name)");
  cmd->add_option("--rubric", o.rubric,
                  "Rubric of the suite's family (default: jailbreak; refusal for xstest)");
  cmd->add_flag("--quiet", flags->quiet, "Print nothing but errors");
  return [flags] { return RunImport(*flags); };
}

}  // namespace breakfix::cli
