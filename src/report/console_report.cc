// The console summary: the phi-3 table in fixed-width columns, then counts and tokens.
#include <algorithm>
#include <sstream>

#include "breakfix/report.h"
#include "report/format.h"

namespace breakfix {
namespace {

// Display width of UTF-8 text (code points; good enough for names and titles).
size_t Width(const std::string& s) {
  size_t w = 0;
  for (unsigned char c : s) w += (c & 0xC0) != 0x80;
  return w;
}

std::string Pad(const std::string& s, size_t width) {
  size_t w = Width(s);
  return w >= width ? s : s + std::string(width - w, ' ');
}

// Control characters from configuration must not drive the terminal.
std::string Printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  return out;
}

}  // namespace

std::string RenderConsoleSummary(const RunReport& report) {
  std::vector<std::vector<std::string>> table;
  std::vector<std::string> header = {"metric (lower is better)"};
  for (const std::string& t : report.targets) header.push_back(Printable(t));
  table.push_back(header);
  for (const FamilyInfo& f : report.families) {
    std::vector<std::string> line = {Printable(MetricLabel(f))};
    const int best = BestTarget(report, f.name);
    for (size_t i = 0; i < report.targets.size(); ++i) {
      const MetricRow* row = FindHeadline(report, f.name, report.targets[i]);
      if (row == nullptr || row->scorable == 0) {
        line.push_back("n/a");
      } else {
        line.push_back(FormatWithInterval(*row) + (static_cast<int>(i) == best ? " *" : ""));
      }
    }
    table.push_back(line);
  }
  std::vector<size_t> widths(header.size(), 0);
  for (const auto& line : table) {
    for (size_t c = 0; c < line.size(); ++c) widths[c] = std::max(widths[c], Width(line[c]));
  }
  std::ostringstream out;
  out << "run " << Printable(report.run.name) << ": " << Printable(RunStatusLine(report)) << "\n";
  for (size_t r = 0; r < table.size(); ++r) {
    for (size_t c = 0; c < table[r].size(); ++c) {
      out << (c == 0 ? "" : "  ") << Pad(table[r][c], widths[c]);
    }
    out << "\n";
    if (r == 0) {
      size_t total = 0;
      for (size_t w : widths) total += w + 2;
      out << std::string(total > 2 ? total - 2 : 0, '-') << "\n";
    }
  }
  out << "(95% intervals; * = best in row)\n";
  for (const std::string& t : report.targets) {
    auto it = report.counts.find(t);
    if (it == report.counts.end()) continue;
    const TargetCounts& c = it->second;
    out << Printable(t) << ": " << c.units << " units, " << c.scored << " scored, " << c.unscorable
        << " unscorable, " << c.pending << " pending\n";
  }
  for (const RefusalLabelRow& r : report.refusal_by_label) {
    out << "refusal rate " << Printable(r.family) << " / " << Printable(r.target) << " on "
        << (r.label.empty() ? std::string("unlabelled") : Printable(r.label))
        << " prompts: " << FormatValue(r.rate) << " [" << FormatValue(r.ci.lo) << ", "
        << FormatValue(r.ci.hi) << "] (" << r.full_refusals << " full, " << r.partial_refusals
        << " partial of " << r.scored << "; " << (r.should_refuse ? "higher" : "lower")
        << " is better)\n";
  }
  for (const CorrectedRow& c : report.corrected) {
    if (!c.category.empty()) continue;
    const CorrectedRate& r = c.corrected;
    out << "judge-corrected " << Printable(c.family) << " / " << Printable(c.target) << ": raw "
        << FormatValue(r.raw) << " -> ";
    if (r.defined) {
      out << FormatValue(r.value) << " [" << FormatValue(r.ci.lo) << ", " << FormatValue(r.ci.hi)
          << "] (Se " << FormatValue(r.sensitivity) << ", Sp " << FormatValue(r.specificity)
          << ")\n";
    } else {
      out << "n/a (" << Printable(r.reason) << ")\n";
    }
  }
  for (const std::string& note : report.judge_validation_notes) {
    out << "note: " << Printable(note) << "\n";
  }
  for (const auto& [role, u] : report.usage) {
    out << "tokens " << role << ": " << u.usage.prompt_tokens << " prompt + "
        << u.usage.completion_tokens << " completion in " << u.calls << " calls";
    if (u.failed_calls > 0) out << " (" << u.failed_calls << " failed)";
    out << "\n";
  }
  return out.str();
}

}  // namespace breakfix
