// The cycle's HTML page: round-over-round trends per model, the last round's results, and every
// round's conversations in one browser (filter by run to compare rounds).
#include <memory>

#include "breakfix/cycle.h"
#include "breakfix/html_report.h"

namespace breakfix {

std::vector<HtmlTrendChart> CycleTrendCharts(const CycleReport& report) {
  std::vector<HtmlTrendChart> charts;
  for (const CycleModelReport& m : report.models) {
    HtmlTrendChart chart;
    chart.title = m.model;
    chart.rounds = m.round_labels;
    for (const CycleReportRow& row : m.rows) {
      HtmlTrendSeries series;
      series.label = row.metric;
      series.over_refusal = row.over_refusal;
      for (const CycleCell& cell : row.cells) {
        if (cell.present && cell.is_mean) series.is_mean = true;
        series.points.push_back({cell.present, cell.value, cell.interval, cell.n});
      }
      chart.series.push_back(std::move(series));
    }
    charts.push_back(std::move(chart));
  }
  return charts;
}

Status WriteCycleHtml(const CycleReport& report, Store* store, const std::string& path) {
  HtmlReportInput input;
  input.title = "breakfix cycle: " + report.cycle;
  input.trends = CycleTrendCharts(report);
  // Every round's run, in round order; the last round's get tables and charts.
  std::vector<std::unique_ptr<RunReport>> runs;
  for (const CycleModelReport& m : report.models) {
    for (size_t r = 0; r < m.runs.size(); ++r) {
      if (m.runs[r].empty()) continue;
      BF_ASSIGN_OR_RETURN(RunReport run, BuildReport(store, m.runs[r], ReportOptions{}));
      runs.push_back(std::make_unique<RunReport>(std::move(run)));
      if (r + 1 == m.runs.size()) input.runs.push_back(runs.back().get());
    }
    input.notes.insert(input.notes.end(), m.notes.begin(), m.notes.end());
  }
  if (!runs.empty()) {
    input.conversations = [&](const std::function<Status(const HtmlConversation&)>& emit) {
      for (const auto& run : runs) BF_RETURN_IF_ERROR(ForEachRunConversation(store, *run, emit));
      return Status::OK();
    };
  }
  return WriteHtmlReport(input, HtmlReportOptions{}, path);
}

}  // namespace breakfix
