// The HTML report: one self-contained file (inline CSS, JavaScript and SVG; nothing fetched from
// the network) that shows a run's phi-3-style table, charts of every rate with its interval,
// severity histograms, round-over-round trends of a cycle, attack success of a campaign, and a
// conversation browser with filters, full-text search and per-turn judge scores.
//
// Everything shown comes from model output or configuration, so all of it is treated as hostile:
// text rendered by the C++ side is HTML-escaped; conversation data is embedded as JSON inside
// <script type="application/json"> blocks with '<', '>' and '&' written as \u escapes (so no
// model text can close the block), and the page's script only ever puts it into the document as
// text nodes (never innerHTML, never a URL). Invalid UTF-8 is replaced, not passed through.
//
// Scale: the browser's data is split into chunks of `conversations_per_chunk` conversations. The
// page parses a small index of every conversation at load and a chunk's transcripts only when one
// of them is opened or a full-text search needs them, and shows one page of rows at a time, so a
// run of 50,000 conversations opens and filters quickly (bench/html_report.sh measures it).
#ifndef BREAKFIX_HTML_REPORT_H_
#define BREAKFIX_HTML_REPORT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "breakfix/interval.h"
#include "breakfix/judge.h"
#include "breakfix/report.h"
#include "breakfix/status.h"
#include "breakfix/store.h"

namespace breakfix {

// One point of a round-over-round trend.
struct HtmlTrendPoint {
  bool present = false;  // the round has a value
  double value = 0;      // rate in [0, 1] or a mean
  Interval ci;           // 95%
  int64_t n = 0;
};

// One line of a trend chart: a metric across rounds.
struct HtmlTrendSeries {
  std::string label;
  bool is_mean = false;       // a mean (ungroundedness) rather than a rate: its own axis
  bool over_refusal = false;  // drawn dashed: the trade-off the defect rates are weighed against
  std::vector<HtmlTrendPoint> points;  // one per round
};

// Round-over-round trends of one model in a cycle.
struct HtmlTrendChart {
  std::string title;                // e.g. "chat-model: defect rates and over-refusal by round"
  std::vector<std::string> rounds;  // "r0", "r1", ...
  std::vector<HtmlTrendSeries> series;
};

// One bar of an attack-success chart.
struct HtmlRateBar {
  std::string key;  // e.g. the strategy
  int64_t n = 0;
  int64_t successes = 0;
  double rate = 0;
  Interval ci;  // Wilson 95%
};

// A bar chart of rates (a campaign's attack success per strategy, per target, ...).
struct HtmlRateChart {
  std::string title;
  std::vector<HtmlRateBar> bars;
};

// One conversation (or attack transcript) in the browser.
struct HtmlConversation {
  std::string run;  // which run or campaign it belongs to (a filter when there are several)
  std::string family;
  std::string category;
  std::string target;
  std::string item_id;
  std::string goal;  // what the simulated user or attacker was after; may be empty
  // "defect", "pass", "scored" (a family reporting a mean), "unscorable", "pending" (not judged
  // yet) or "failed" (the conversation failed); campaigns use the attack's outcome.
  std::string outcome;
  int score = -1;      // the conversation's score on its scale, -1 when not scored
  std::string scale;   // ScaleName() of the score, or "" when not scored
  std::string judge;   // judge name
  std::string reason;  // the judge's reason for the score (or why it is unscorable)
  std::vector<Message> turns;
  std::vector<TurnScore> turn_scores;  // per assistant turn, 1-based
};

// What goes into one report. Sections without data are left out of the page.
struct HtmlReportInput {
  std::string title;
  std::vector<const RunReport*> runs;  // each gets a results table and charts
  std::vector<HtmlTrendChart> trends;
  std::vector<HtmlRateChart> rate_charts;
  // Streams the conversations of the browser: calls `emit` once per conversation, in display
  // order. May be empty (no browser).
  std::function<Status(const std::function<Status(const HtmlConversation&)>& emit)> conversations;
  std::vector<std::string> notes;  // free text shown under the title (escaped)
  // What the browser calls the "family" and the score (a campaign's are strategies and 1-10
  // ratings).
  std::string family_label = "Family";
  std::string score_label = "Score (severity)";
};

struct HtmlReportOptions {
  int conversations_per_chunk = 500;  // conversations per lazily parsed data block
  int page_size = 50;                 // rows per page in the browser
};

// Renders the page and writes it atomically to `path`.
Status WriteHtmlReport(const HtmlReportInput& input, const HtmlReportOptions& options,
                       const std::string& path);

// Streams every unit of a stored run as an HtmlConversation (transcript, per-turn scores, the
// item's goal), in the store's order.
Status ForEachRunConversation(Store* store, const RunReport& report,
                              const std::function<Status(const HtmlConversation&)>& emit);

// Text escaped for HTML element content and attribute values (& < > " ').
std::string HtmlEscape(const std::string& text);

// JSON text made safe to embed in a <script type="application/json"> block: invalid UTF-8 is
// replaced with U+FFFD and every '<', '>' and '&' becomes a \u escape.
std::string ScriptSafeJson(const std::string& json_text);

}  // namespace breakfix

#endif  // BREAKFIX_HTML_REPORT_H_
