// Small text helpers shared by the report renderers.
#ifndef BREAKFIX_REPORT_FORMAT_H_
#define BREAKFIX_REPORT_FORMAT_H_

#include <string>

#include "breakfix/metrics.h"
#include "breakfix/report.h"

namespace breakfix {

// "0.123" (rates and means alike, three decimals as in the phi-3 table).
std::string FormatValue(double v);
// "0.123 [0.101, 0.149]"
std::string FormatWithInterval(const MetricRow& row);
// Escapes text for a Markdown table cell: pipes, backslashes, HTML-significant characters and
// newlines, so names from configuration can never break the table or inject markup.
std::string MarkdownCell(const std::string& text);
// One RFC 4180 CSV cell: quoted when needed; a leading = + - @ (or tab/CR) gets a ' so that
// spreadsheets show model text instead of evaluating it.
std::string CsvCell(const std::string& text);
// Index of the best (lowest) headline value per family across targets; -1 when fewer than two
// targets have a value or all are equal.
int BestTarget(const RunReport& report, const std::string& family);
// "metric" label for a family: its title.
std::string MetricLabel(const FamilyInfo& family);
// A status word for the run.
std::string RunStatusLine(const RunReport& report);

}  // namespace breakfix

#endif  // BREAKFIX_REPORT_FORMAT_H_
