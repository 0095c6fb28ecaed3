// The Markdown report, laid out like the phi-3 table: rows = metrics, columns = targets.
#include <sstream>

#include "breakfix/report.h"
#include "report/format.h"

namespace breakfix {

std::string RenderMarkdown(const RunReport& report) {
  std::ostringstream md;
  const RunRecord& run = report.run;
  md << "# breakfix report: " << MarkdownCell(run.name) << "\n\n";
  md << "- Suite: `" << MarkdownCell(run.suite_name) << "` (content hash "
     << run.suite_hash.substr(0, 12) << ")\n";
  md << "- Judge: " << MarkdownCell(run.judge) << "\n";
  if (!run.simulator.empty()) md << "- Simulator: " << MarkdownCell(run.simulator) << "\n";
  md << "- Seed: " << run.seed << "\n";
  md << "- Status: " << MarkdownCell(RunStatusLine(report)) << "\n\n";

  md << "## Results (lower is better)\n\n";
  md << "| Metric |";
  for (const std::string& t : report.targets) md << " " << MarkdownCell(t) << " |";
  md << "\n|---|";
  for (size_t i = 0; i < report.targets.size(); ++i) md << "---|";
  md << "\n";
  for (const FamilyInfo& f : report.families) {
    md << "| " << MarkdownCell(MetricLabel(f)) << " |";
    const int best = BestTarget(report, f.name);
    for (size_t i = 0; i < report.targets.size(); ++i) {
      const MetricRow* row = FindHeadline(report, f.name, report.targets[i]);
      if (row == nullptr || row->scorable == 0) {
        md << " n/a |";
        continue;
      }
      std::string value = FormatValue(row->value);
      if (static_cast<int>(i) == best) value = "**" + value + "**";
      md << " " << value << " [" << FormatValue(row->ci.lo) << ", " << FormatValue(row->ci.hi)
         << "] |";
    }
    md << "\n";
  }
  md << "\nValues are defect rates DR-x (share of scorable samples with severity >= x) or mean "
        "ungroundedness (0-4), with 95% intervals: Wilson for rates, percentile bootstrap ("
     << report.bootstrap_resamples
     << " resamples) for means. The lowest value per row is in bold. Unscorable judgments are "
        "excluded from every value and counted below.\n\n";

  md << "## By category\n\n";
  md << "| Family | Category | Target | n | Scorable | Unscorable | Defects | Value | 95% CI |\n";
  md << "|---|---|---|---|---|---|---|---|---|\n";
  for (const FamilyInfo& f : report.families) {
    for (const MetricRow& row : report.rows) {
      if (row.family != f.name) continue;
      md << "| " << MarkdownCell(f.name) << " | "
         << (row.category.empty() ? "*all*" : MarkdownCell(row.category)) << " | "
         << MarkdownCell(row.target) << " | " << row.n << " | " << row.scorable << " | "
         << row.unscorable << " | "
         << (row.is_mean ? std::string("-") : std::to_string(row.defects)) << " | "
         << FormatValue(row.value) << " | [" << FormatValue(row.ci.lo) << ", "
         << FormatValue(row.ci.hi) << "] |\n";
    }
  }

  md << "\n## Units and judge outcomes\n\n";
  md << "| Target | Units | Conversations done | Failed (will retry) | Scored | Unscorable | "
        "Pending |\n|---|---|---|---|---|---|---|\n";
  for (const std::string& t : report.targets) {
    auto it = report.counts.find(t);
    if (it == report.counts.end()) continue;
    const TargetCounts& c = it->second;
    md << "| " << MarkdownCell(t) << " | " << c.units << " | " << c.conversations_done << " | "
       << c.conversations_failed << " | " << c.scored << " | " << c.unscorable << " | " << c.pending
       << " |\n";
  }

  md << "\n## Token usage\n\n";
  md << "| Role | Calls | Failed calls | Prompt tokens | Completion tokens | Mean latency (ms) |\n";
  md << "|---|---|---|---|---|---|\n";
  for (const auto& [role, u] : report.usage) {
    const double mean_latency = u.calls > 0 ? u.latency_ms_total / u.calls : 0;
    md << "| " << MarkdownCell(role) << " | " << u.calls << " | " << u.failed_calls << " | "
       << u.usage.prompt_tokens << " | " << u.usage.completion_tokens << " | "
       << FormatValue(mean_latency) << " |\n";
  }
  return md.str();
}

}  // namespace breakfix
