// The self-contained HTML report (see breakfix/html_report.h): the C++ side lays out the tables
// and draws every chart as inline SVG; the conversation browser is data (JSON blocks) plus the
// script in html_assets.cc.
#include "breakfix/html_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "breakfix/hash.h"
#include "core/atomic_file.h"
#include "core/utf8.h"
#include "report/format.h"
#include "report/html_assets.h"

namespace breakfix {
namespace {

using nlohmann::json;

// Eight distinguishable colours (the Okabe-Ito palette, readable with colour blindness); targets
// and series take them in order.
constexpr const char* kPalette[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                    "#56B4E9", "#D55E00", "#F0E442", "#000000"};
constexpr size_t kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

const char* Colour(size_t i) { return kPalette[i % kPaletteSize]; }

std::string Esc(const std::string& text) { return HtmlEscape(ReplaceInvalidUtf8(text)); }

// Valid UTF-8 with '<', '>' and '&' written as \u escapes, which JSON allows inside strings (the
// only place these characters can occur in JSON text).
std::string EscapeForScript(std::string_view valid_json) {
  std::string out;
  out.reserve(valid_json.size() + 16);
  for (char c : valid_json) {
    switch (c) {
      case '<':
        out += "\\u003c";
        break;
      case '>':
        out += "\\u003e";
        break;
      case '&':
        out += "\\u0026";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// JSON for a <script type="application/json"> block; the dump itself replaces invalid UTF-8.
std::string ScriptJson(const json& value) {
  return EscapeForScript(value.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

std::string Percent(double v) {
  const double p = v * 100;
  return Fixed(p, p != 0 && std::fabs(p) < 10 ? 1 : 0) + "%";
}

// How many gridline steps an axis up to `max` gets, so every tick is a round number.
int AxisSteps(double max, bool rate) {
  struct Step {
    double max;
    int steps;
  };
  static const Step kRate[] = {{0.05, 5}, {0.1, 5}, {0.2, 4}, {0.25, 5},
                               {0.4, 4},  {0.5, 5}, {0.6, 6}, {0.8, 4}};
  static const Step kMean[] = {{0.5, 5}, {1.5, 3}, {3, 3}, {5, 5}, {7, 7}};
  if (rate) {
    for (const Step& s : kRate) {
      if (std::fabs(s.max - max) < 1e-9) return s.steps;
    }
  } else {
    for (const Step& s : kMean) {
      if (std::fabs(s.max - max) < 1e-9) return s.steps;
    }
  }
  return 4;
}

// The smallest "nice" axis maximum at or above `v`.
double NiceMax(double v, bool rate) {
  static const double kRate[] = {0.05, 0.1, 0.2, 0.25, 0.4, 0.5, 0.6, 0.8, 1.0};
  static const double kMean[] = {0.5, 1, 1.5, 2, 3, 4, 5, 7, 10};
  const double* list = rate ? kRate : kMean;
  for (int i = 0; i < 9; ++i) {
    if (v <= list[i] + 1e-12) return list[i];
  }
  return rate ? 1.0 : std::ceil(v);
}

std::string AxisLabel(double v, bool rate) {
  if (rate)
    return Fixed(v * 100,
                 v > 0 && v < 0.1 && std::fabs(v * 100 - std::round(v * 100)) > 1e-9 ? 1 : 0) +
           "%";
  return Fixed(v, v < 10 ? 1 : 0);
}

// Shortens a label for an axis; the full text stays in the element's <title>.
std::string ShortLabel(const std::string& s, size_t max_chars) {
  std::string v = ReplaceInvalidUtf8(s);
  size_t chars = 0, i = 0;
  while (i < v.size()) {
    if (chars == max_chars) return v.substr(0, i) + "\xE2\x80\xA6";
    const unsigned char c = static_cast<unsigned char>(v[i]);
    i += c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    ++chars;
  }
  return v;
}

// Opens a chart: the figure, its caption, the SVG element and the horizontal gridlines with
// their axis labels. `y` maps a value to its vertical position.
template <typename YFn>
std::string ChartOpen(const std::string& caption, double width, double height, double left,
                      double ymax, bool rate, const YFn& y) {
  std::string svg = "<figure class=\"bf-chart\"><figcaption>" + Esc(caption) +
                    "</figcaption><svg class=\"bf-svg\" role=\"img\" width=\"" + Fixed(width, 0) +
                    "\" height=\"" + Fixed(height, 0) + "\" viewBox=\"0 0 " + Fixed(width, 0) +
                    " " + Fixed(height, 0) + "\"><title>" + Esc(caption) + "</title>";
  const int steps = AxisSteps(ymax, rate);
  for (int t = 0; t <= steps; ++t) {
    const double v = ymax * t / steps;
    const std::string yy = Fixed(y(v), 1);
    svg += "<line class=\"grid\" x1=\"" + Fixed(left, 0) + "\" x2=\"" + Fixed(width - 6, 0) +
           "\" y1=\"" + yy + "\" y2=\"" + yy + "\"/><text x=\"" + Fixed(left - 5, 0) + "\" y=\"" +
           Fixed(y(v) + 4, 1) + "\" text-anchor=\"end\">" + Esc(AxisLabel(v, rate)) + "</text>";
  }
  return svg;
}

struct BarValue {
  bool present = false;
  double value = 0;
  bool has_ci = false;
  Interval ci;
  std::string tip;  // tooltip text (escaped when written)
};

std::string Legend(const std::vector<std::string>& series, bool dashed_last = false) {
  std::string out = "<div class=\"bf-legend\">";
  for (size_t s = 0; s < series.size(); ++s) {
    out += "<span><span class=\"sw\" style=\"background:" + std::string(Colour(s)) + "\"></span>" +
           Esc(series[s]) + "</span>";
  }
  return out + "</div>";
}

// A grouped bar chart: one group per label, one bar per series, optional CI whiskers.
std::string GroupedBars(const std::string& caption, const std::vector<std::string>& groups,
                        const std::vector<std::string>& series,
                        const std::vector<std::vector<BarValue>>& values, bool rate) {
  const double bar_w = series.size() > 4 ? 12 : 18;
  const double gap = 16, top = 12, plot_h = 170, bottom = 64;
  const double group_w = bar_w * static_cast<double>(series.size()) + gap;
  // The first group's label is drawn slanted to the left of its group: leave room for it.
  const double first_label =
      groups.empty() ? 0 : 5.2 * static_cast<double>(ShortLabel(groups[0], 22).size());
  const double left = std::max(48.0, first_label - group_w / 2 - gap / 2 + 4);
  const double width = left + group_w * static_cast<double>(groups.size()) + 10;
  const double height = top + plot_h + bottom;
  double hi = 0;
  for (const auto& g : values) {
    for (const BarValue& b : g) {
      if (!b.present) continue;
      hi = std::max(hi, b.has_ci ? std::max(b.value, b.ci.hi) : b.value);
    }
  }
  const double ymax = NiceMax(hi <= 0 ? (rate ? 0.05 : 0.5) : hi, rate);
  auto y = [&](double v) { return top + plot_h - plot_h * std::clamp(v / ymax, 0.0, 1.0); };
  std::string svg = ChartOpen(caption, width, height, left, ymax, rate, y);
  svg += "<line class=\"axis\" x1=\"" + Fixed(left, 0) + "\" x2=\"" + Fixed(left, 0) + "\" y1=\"" +
         Fixed(top, 0) + "\" y2=\"" + Fixed(top + plot_h, 0) + "\"/>";
  for (size_t g = 0; g < groups.size(); ++g) {
    const double gx = left + gap / 2 + group_w * static_cast<double>(g);
    for (size_t s = 0; s < series.size() && s < values[g].size(); ++s) {
      const BarValue& b = values[g][s];
      if (!b.present) continue;
      const double x = gx + bar_w * static_cast<double>(s);
      const double top_y = y(b.value);
      svg += "<rect class=\"bar\" data-series=\"" + std::to_string(s) + "\" x=\"" + Fixed(x, 1) +
             "\" y=\"" + Fixed(top_y, 1) + "\" width=\"" + Fixed(bar_w - 2, 1) + "\" height=\"" +
             Fixed(std::max(0.0, top + plot_h - top_y), 1) + "\" fill=\"" + Colour(s) +
             "\"><title>" + Esc(b.tip) + "</title></rect>";
      if (b.has_ci) {
        const double cx = x + (bar_w - 2) / 2;
        const std::string x1 = Fixed(cx - 3, 1), x2 = Fixed(cx + 3, 1), xc = Fixed(cx, 1);
        const std::string ylo = Fixed(y(b.ci.lo), 1), yhi = Fixed(y(b.ci.hi), 1);
        svg += "<g class=\"whisker\"><line class=\"whisker\" x1=\"" + xc + "\" x2=\"" + xc +
               "\" y1=\"" + ylo + "\" y2=\"" + yhi + "\"/><line class=\"whisker\" x1=\"" + x1 +
               "\" x2=\"" + x2 + "\" y1=\"" + ylo + "\" y2=\"" + ylo +
               "\"/><line class=\"whisker\" x1=\"" + x1 + "\" x2=\"" + x2 + "\" y1=\"" + yhi +
               "\" y2=\"" + yhi + "\"/></g>";
      }
    }
    const double lx = gx + bar_w * static_cast<double>(series.size()) / 2;
    svg += "<text transform=\"translate(" + Fixed(lx, 1) + "," + Fixed(top + plot_h + 12, 1) +
           ") rotate(-30)\" text-anchor=\"end\"><title>" + Esc(groups[g]) + "</title>" +
           Esc(ShortLabel(groups[g], 22)) + "</text>";
  }
  svg += "</svg>";
  if (series.size() > 1) svg += Legend(series);
  return svg + "</figure>";
}

// A line chart across rounds, one line per series, with CI whiskers at each point.
std::string TrendLines(const std::string& caption, const std::vector<std::string>& rounds,
                       const std::vector<const HtmlTrendSeries*>& series, bool rate) {
  const double left = 48, top = 12, plot_h = 170, bottom = 30, step = 150;
  const double width = left + step * static_cast<double>(std::max<size_t>(rounds.size(), 2)) + 20;
  const double height = top + plot_h + bottom;
  double hi = 0;
  for (const HtmlTrendSeries* s : series) {
    for (const HtmlTrendPoint& p : s->points) {
      if (p.present) hi = std::max({hi, p.value, p.ci.hi});
    }
  }
  const double ymax = NiceMax(hi <= 0 ? (rate ? 0.05 : 0.5) : hi, rate);
  auto y = [&](double v) { return top + plot_h - plot_h * std::clamp(v / ymax, 0.0, 1.0); };
  auto x = [&](size_t r) { return left + step / 2 + step * static_cast<double>(r); };
  std::string svg = ChartOpen(caption, width, height, left, ymax, rate, y);
  for (size_t r = 0; r < rounds.size(); ++r) {
    svg += "<text x=\"" + Fixed(x(r), 1) + "\" y=\"" + Fixed(top + plot_h + 18, 1) +
           "\" text-anchor=\"middle\">" + Esc(rounds[r]) + "</text>";
  }
  std::vector<std::string> names;
  for (size_t s = 0; s < series.size(); ++s) {
    const HtmlTrendSeries& ser = *series[s];
    names.push_back(ser.label + (ser.over_refusal ? " (dashed)" : ""));
    std::string path;
    for (size_t r = 0; r < ser.points.size(); ++r) {
      const HtmlTrendPoint& p = ser.points[r];
      if (!p.present) continue;
      const double offset = 4.0 * (static_cast<double>(s) - (series.size() - 1) / 2.0);
      path += (path.empty() ? "M" : " L") + Fixed(x(r) + offset, 1) + " " + Fixed(y(p.value), 1);
    }
    if (!path.empty()) {
      svg += "<path class=\"trend\" data-series=\"" + std::to_string(s) + "\" d=\"" + path +
             "\" fill=\"none\" stroke=\"" + Colour(s) + "\" stroke-width=\"2\"" +
             (ser.over_refusal ? " stroke-dasharray=\"6 4\"" : "") + "/>";
    }
    for (size_t r = 0; r < ser.points.size(); ++r) {
      const HtmlTrendPoint& p = ser.points[r];
      if (!p.present) continue;
      // Series sit side by side around the round's x, so overlapping intervals stay readable.
      const double offset = 4.0 * (static_cast<double>(s) - (series.size() - 1) / 2.0);
      const std::string cx = Fixed(x(r) + offset, 1);
      svg += "<line class=\"trend-ci\" stroke-width=\"1.5\" x1=\"" + cx + "\" x2=\"" + cx +
             "\" y1=\"" + Fixed(y(p.ci.lo), 1) + "\" y2=\"" + Fixed(y(p.ci.hi), 1) +
             "\" stroke=\"" + Colour(s) + "\"/>";
      const std::string tip = ser.label + ", " + rounds[std::min(r, rounds.size() - 1)] + ": " +
                              (rate ? Percent(p.value) : Fixed(p.value, 2)) + " [" +
                              (rate ? Percent(p.ci.lo) : Fixed(p.ci.lo, 2)) + ", " +
                              (rate ? Percent(p.ci.hi) : Fixed(p.ci.hi, 2)) +
                              "], n=" + std::to_string(p.n);
      svg += "<circle class=\"point\" cx=\"" + cx + "\" cy=\"" + Fixed(y(p.value), 1) +
             "\" r=\"3.5\" fill=\"" + Colour(s) + "\"><title>" + Esc(tip) + "</title></circle>";
    }
  }
  svg += "</svg>" + Legend(names);
  return svg + "</figure>";
}

// --- the run sections ---

std::string FormatRowValue(const MetricRow& row) {
  return row.is_mean ? Fixed(row.value, 2) : Percent(row.value);
}
std::string FormatRowInterval(const MetricRow& row) {
  if (row.is_mean) return "[" + Fixed(row.ci.lo, 2) + ", " + Fixed(row.ci.hi, 2) + "]";
  return "[" + Percent(row.ci.lo) + ", " + Percent(row.ci.hi) + "]";
}

std::string ResultsTable(const RunReport& report) {
  std::string h = "<table class=\"bf-table bf-results\"><thead><tr><th>Metric</th>";
  for (const std::string& t : report.targets) h += "<th class=\"bf-isolate\">" + Esc(t) + "</th>";
  h += "</tr></thead><tbody>";
  for (const FamilyInfo& f : report.families) {
    h += "<tr><th class=\"bf-isolate\">" + Esc(MetricLabel(f)) + "</th>";
    const int best = BestTarget(report, f.name);
    for (size_t i = 0; i < report.targets.size(); ++i) {
      const MetricRow* row = FindHeadline(report, f.name, report.targets[i]);
      if (row == nullptr || row->scorable == 0) {
        h += "<td class=\"num\">n/a</td>";
        continue;
      }
      const bool is_best = static_cast<int>(i) == best;
      h += std::string("<td class=\"num") + (is_best ? " best" : "") + "\" title=\"" +
           Esc(std::to_string(row->scorable) + " scored, " + std::to_string(row->unscorable) +
               " unscorable" +
               (row->is_mean ? "" : ", " + std::to_string(row->defects) + " defects")) +
           "\">" + Esc(FormatRowValue(*row)) + " <span class=\"ci\">" +
           Esc(FormatRowInterval(*row)) + "</span></td>";
    }
    h += "</tr>";
  }
  return h + "</tbody></table>";
}

std::string CountsTable(const RunReport& report) {
  std::string h =
      "<table class=\"bf-table bf-counts\"><thead><tr><th>Target</th><th>Units</th>"
      "<th>Scored</th><th>Unscorable</th><th>Pending</th><th>Failed conversations</th></tr>"
      "</thead><tbody>";
  for (const std::string& t : report.targets) {
    auto it = report.counts.find(t);
    const TargetCounts c = it == report.counts.end() ? TargetCounts{} : it->second;
    h += "<tr><td class=\"bf-isolate\">" + Esc(t) + "</td><td class=\"num\">" +
         std::to_string(c.units) + "</td><td class=\"num\">" + std::to_string(c.scored) +
         "</td><td class=\"num\">" + std::to_string(c.unscorable) + "</td><td class=\"num\">" +
         std::to_string(c.pending) + "</td><td class=\"num\">" +
         std::to_string(c.conversations_failed) + "</td></tr>";
  }
  return h + "</tbody></table>";
}

std::string CategoryTable(const RunReport& report) {
  std::string h =
      "<details><summary>Every family &times; category &times; target</summary><table "
      "class=\"bf-table bf-categories\"><thead><tr><th>Family</th><th>Category</th>"
      "<th>Target</th><th>n</th><th>Unscorable</th><th>Defects</th><th>Value</th><th>95% "
      "interval</th></tr></thead><tbody>";
  for (const FamilyInfo& f : report.families) {
    for (const MetricRow& row : report.rows) {
      if (row.family != f.name) continue;
      h += "<tr><td class=\"bf-isolate\">" + Esc(f.name) + "</td><td class=\"bf-isolate\">" +
           (row.category.empty() ? std::string("<em>all</em>") : Esc(row.category)) +
           "</td><td class=\"bf-isolate\">" + Esc(row.target) + "</td><td class=\"num\">" +
           std::to_string(row.n) + "</td><td class=\"num\">" + std::to_string(row.unscorable) +
           "</td><td class=\"num\">" + (row.is_mean ? "&ndash;" : std::to_string(row.defects)) +
           "</td><td class=\"num\">" +
           (row.scorable == 0 ? std::string("n/a") : Esc(FormatRowValue(row))) +
           "</td><td class=\"num\">" +
           (row.scorable == 0 ? std::string("") : Esc(FormatRowInterval(row))) + "</td></tr>";
    }
  }
  return h + "</tbody></table></details>";
}

std::string RefusalLabelTable(const RunReport& report) {
  if (report.refusal_by_label.empty()) return "";
  std::string h =
      "<h3>Refusal by prompt label (XSTest metrics)</h3><table class=\"bf-table bf-xstest\">"
      "<thead><tr><th>Family</th><th>Target</th><th>Label</th><th>Scored</th><th>Refusal "
      "rate</th><th>Full</th><th>Partial</th><th>Unscorable</th></tr></thead><tbody>";
  for (const RefusalLabelRow& r : report.refusal_by_label) {
    h += "<tr><td class=\"bf-isolate\">" + Esc(r.family) + "</td><td class=\"bf-isolate\">" +
         Esc(r.target) + "</td><td class=\"bf-isolate\">" +
         (r.label.empty() ? std::string("<em>none</em>") : Esc(r.label)) +
         (r.should_refuse ? " (higher is better)" : " (lower is better)") +
         "</td><td class=\"num\">" + std::to_string(r.scored) + "</td><td class=\"num\">" +
         Esc(Percent(r.rate)) + " <span class=\"ci\">[" + Esc(Percent(r.ci.lo)) + ", " +
         Esc(Percent(r.ci.hi)) + "]</span></td><td class=\"num\">" +
         std::to_string(r.full_refusals) + "</td><td class=\"num\">" +
         std::to_string(r.partial_refusals) + "</td><td class=\"num\">" +
         std::to_string(r.unscorable) + "</td></tr>";
  }
  return h +
         "</tbody></table><p class=\"bf-note\">Refusal = partial or full refusal on the "
         "three-way refusal rubric. On prompts labelled safe it is over-refusal.</p>";
}

std::string CorrectedTable(const RunReport& report) {
  if (report.judge_validation_file.empty()) return "";
  std::string h =
      "<h3>Judge-corrected rates (Rogan-Gladen)</h3><p class=\"bf-meta\">Judge "
      "validation <code>" +
      Esc(report.judge_validation_file) + "</code></p>";
  for (const std::string& note : report.judge_validation_notes) {
    h += "<p class=\"bf-note\">Note: " + Esc(note) + "</p>";
  }
  h += "<table class=\"bf-table bf-corrected\"><thead><tr><th>Family</th><th>Category</th>"
       "<th>Target</th><th>Raw</th><th>Se</th><th>Sp</th><th>Corrected (95% interval incl. "
       "validation)</th></tr></thead><tbody>";
  for (const CorrectedRow& c : report.corrected) {
    const CorrectedRate& r = c.corrected;
    h += "<tr><td class=\"bf-isolate\">" + Esc(c.family) + "</td><td class=\"bf-isolate\">" +
         (c.category.empty() ? std::string("<em>all</em>") : Esc(c.category)) +
         "</td><td class=\"bf-isolate\">" + Esc(c.target) + "</td><td class=\"num\">" +
         Esc(Percent(r.raw)) + "</td><td class=\"num\">" + Esc(Fixed(r.sensitivity, 3)) +
         "</td><td class=\"num\">" + Esc(Fixed(r.specificity, 3)) +
         (c.rubric_counts ? "" : " (all rubrics)") + "</td><td class=\"num\">" +
         (r.defined ? Esc(Percent(r.value)) + " <span class=\"ci\">[" + Esc(Percent(r.ci.lo)) +
                          ", " + Esc(Percent(r.ci.hi)) + "]</span>"
                    : "n/a: " + Esc(r.reason)) +
         "</td></tr>";
  }
  return h + "</tbody></table>";
}

// Bars per category (the family as a whole first) and target, with Wilson/bootstrap whiskers.
std::string FamilyChart(const RunReport& report, const FamilyInfo& f) {
  std::vector<std::string> groups;
  std::vector<std::string> categories;
  for (const MetricRow& row : report.rows) {
    if (row.family != f.name || row.category.empty()) continue;
    if (std::find(categories.begin(), categories.end(), row.category) == categories.end()) {
      categories.push_back(row.category);
    }
  }
  categories.insert(categories.begin(), "");
  std::vector<std::vector<BarValue>> values;
  for (const std::string& c : categories) {
    groups.push_back(c.empty() ? "all categories" : c);
    std::vector<BarValue> bars;
    for (const std::string& t : report.targets) {
      BarValue b;
      for (const MetricRow& row : report.rows) {
        if (row.family != f.name || row.category != c || row.target != t) continue;
        if (row.scorable == 0) break;
        b.present = true;
        b.value = row.value;
        b.has_ci = true;
        b.ci = row.ci;
        b.tip = t + " / " + (c.empty() ? "all categories" : c) + ": " + FormatRowValue(row) + " " +
                FormatRowInterval(row) + ", n=" + std::to_string(row.scorable) +
                (row.is_mean ? "" : ", defects=" + std::to_string(row.defects));
      }
      bars.push_back(b);
    }
    values.push_back(bars);
  }
  const std::string what = f.is_mean ? "mean score" : "defect rate";
  return GroupedBars(MetricLabel(f) + ": " + what + " by category and target (95% interval)",
                     groups, report.targets, values, !f.is_mean);
}

// The share of scored samples at each score, per target.
std::string HistogramChart(const RunReport& report, const FamilyInfo& f) {
  size_t levels = 0;
  for (const std::string& t : report.targets) {
    const MetricRow* row = FindHeadline(report, f.name, t);
    if (row != nullptr) levels = std::max(levels, row->histogram.size());
  }
  if (levels == 0) return "";
  std::vector<std::string> groups;
  std::vector<std::vector<BarValue>> values(levels);
  for (size_t s = 0; s < levels; ++s) {
    groups.push_back("score " + std::to_string(s));
    for (const std::string& t : report.targets) {
      const MetricRow* row = FindHeadline(report, f.name, t);
      BarValue b;
      if (row != nullptr && row->scorable > 0 && s < row->histogram.size()) {
        b.present = true;
        b.value = static_cast<double>(row->histogram[s]) / static_cast<double>(row->scorable);
        b.tip = t + ", score " + std::to_string(s) + ": " + std::to_string(row->histogram[s]) +
                " of " + std::to_string(row->scorable) + " (" + Percent(b.value) + ")";
      }
      values[s].push_back(b);
    }
  }
  return GroupedBars(MetricLabel(f) + ": score distribution", groups, report.targets, values, true);
}

std::string RunSection(const RunReport& report, size_t index) {
  const RunRecord& run = report.run;
  std::string h = "<section class=\"bf-run\" id=\"run-" + std::to_string(index) + "\"><h2>Run " +
                  Esc(run.name) + "</h2>";
  h +=
      "<p class=\"bf-meta\">Suite <code>" + Esc(run.suite_name) + "</code> (content hash " +
      Esc(run.suite_hash.substr(0, 12)) + ") &middot; judge <code>" + Esc(run.judge) + "</code>" +
      (run.simulator.empty() ? "" : " &middot; simulator <code>" + Esc(run.simulator) + "</code>") +
      " &middot; seed " + std::to_string(run.seed) + " &middot; " + Esc(RunStatusLine(report)) +
      "</p>";
  h += "<h3>Results (lower is better)</h3>" + ResultsTable(report);
  h += "<p class=\"bf-note\">Defect rates DR-x are the share of scorable conversations with a "
       "score of at least x; ungroundedness is a mean on its 0&ndash;4 scale. Intervals are 95%: "
       "Wilson for rates, percentile bootstrap (" +
       std::to_string(report.bootstrap_resamples) +
       " resamples) for means. &#9733; marks the lowest value of a row. Unscorable judgments are "
       "excluded from every value and counted below.</p>";
  h += CountsTable(report) + CategoryTable(report);
  h += RefusalLabelTable(report) + CorrectedTable(report);
  h += "<h3>Defect rates by category</h3><div class=\"bf-charts\">";
  for (const FamilyInfo& f : report.families) h += FamilyChart(report, f);
  h += "</div><h3>Score distributions</h3><div class=\"bf-charts\">";
  for (const FamilyInfo& f : report.families) h += HistogramChart(report, f);
  return h + "</div></section>";
}

std::string TrendSection(const HtmlTrendChart& chart) {
  std::vector<const HtmlTrendSeries*> rates, means;
  for (const HtmlTrendSeries& s : chart.series) (s.is_mean ? means : rates).push_back(&s);
  std::string h = "<div class=\"bf-charts\">";
  if (!rates.empty()) {
    h += TrendLines(chart.title + ": defect rates and over-refusal", chart.rounds, rates, true);
  }
  if (!means.empty()) h += TrendLines(chart.title + ": means", chart.rounds, means, false);
  return h + "</div>";
}

std::string RateChartSection(const HtmlRateChart& chart) {
  std::vector<std::string> groups;
  std::vector<std::vector<BarValue>> values;
  for (const HtmlRateBar& bar : chart.bars) {
    groups.push_back(bar.key);
    BarValue b;
    b.present = bar.n > 0;
    b.value = bar.rate;
    b.has_ci = true;
    b.ci = bar.ci;
    b.tip = bar.key + ": " + Percent(bar.rate) + " [" + Percent(bar.ci.lo) + ", " +
            Percent(bar.ci.hi) + "], " + std::to_string(bar.successes) + " of " +
            std::to_string(bar.n);
    values.push_back({b});
  }
  return GroupedBars(chart.title, groups, {"attack success rate"}, values, true);
}

// Dictionary-encodes one string field of the browser index.
class Dictionary {
 public:
  int Index(const std::string& value) {
    auto [it, inserted] = ids_.emplace(value, static_cast<int>(values_.size()));
    if (inserted) values_.push_back(value);
    return it->second;
  }
  json Values() const { return values_; }

 private:
  std::map<std::string, int> ids_;
  std::vector<std::string> values_;
};

// A fresh random nonce for the page's Content-Security-Policy: only the page's own script
// carries it, so any <script> or event handler that slipped into the markup would not run.
std::string ScriptNonce() {
  std::random_device rd;
  std::string seed;
  for (int i = 0; i < 4; ++i) seed += std::to_string(rd());
  return Sha256Hex(seed).substr(0, 32);
}

}  // namespace

std::string HtmlEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string ScriptSafeJson(const std::string& json_text) {
  return EscapeForScript(ReplaceInvalidUtf8(json_text));
}

Status ForEachRunConversation(Store* store, const RunReport& report,
                              const std::function<Status(const HtmlConversation&)>& emit) {
  std::map<std::string, const FamilyInfo*> families;
  for (const FamilyInfo& f : report.families) families[f.name] = &f;
  HtmlConversation c;
  return store->ForEachResult(report.run.id, [&](const ResultRow& row) -> Status {
    c = HtmlConversation{};
    c.run = report.run.name;
    c.family = row.unit.family;
    c.category = row.unit.category;
    c.target = row.unit.target;
    c.item_id = row.unit.item_id;
    BF_ASSIGN_OR_RETURN(auto conversation, store->GetConversation(row.unit.conversation_key));
    if (conversation) {
      c.turns = conversation->turns;
      if (!conversation->item_key.empty()) {
        BF_ASSIGN_OR_RETURN(auto item, store->GetItem(conversation->item_key));
        if (item) c.goal = item->goal;
      }
    }
    if (row.annotated) {
      const Annotation& a = row.annotation;
      c.judge = row.judge;
      c.reason = a.reason;
      if (a.outcome == Outcome::kScored) {
        c.score = a.score;
        c.scale = ScaleName(a.scale);
        c.turn_scores = a.turns;
        const auto it = families.find(row.unit.family);
        const bool is_mean = it != families.end() && it->second->is_mean;
        const int threshold =
            a.scale == Scale::kBinary ? 1 : (it != families.end() ? it->second->threshold : 1);
        // Means have no defect threshold: their conversations are just "scored".
        c.outcome = is_mean ? "scored" : (a.score >= threshold ? "defect" : "pass");
      } else {
        c.outcome = "unscorable";
      }
    } else if (row.conversation_started && row.conversation_status == ConversationStatus::kFailed) {
      c.outcome = "failed";
    } else {
      c.outcome = "pending";
    }
    return emit(c);
  });
}

Status WriteHtmlReport(const HtmlReportInput& input, const HtmlReportOptions& options,
                       const std::string& path) {
  if (options.conversations_per_chunk < 1 || options.page_size < 1) {
    return Status::InvalidArgument("HTML report: chunk and page sizes must be at least 1");
  }
  BF_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path));
  const std::string nonce = ScriptNonce();
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'; img-src data:; script-src 'nonce-" +
      nonce + "'\"><meta name=\"generator\" content=\"breakfix " BREAKFIX_VERSION "\"><title>" +
      Esc(input.title) + "</title><style>" + kHtmlReportCss + "</style></head><body>";
  h += "<header class=\"bf-top\"><h1 class=\"bf-isolate\">" + Esc(input.title) + "</h1>";
  for (const std::string& note : input.notes) h += "<p class=\"bf-meta\">" + Esc(note) + "</p>";
  h += "<nav class=\"bf-toc\">";
  if (!input.trends.empty()) h += "<a href=\"#trends\">Round-over-round trends</a>";
  if (!input.rate_charts.empty()) h += "<a href=\"#attacks\">Attack success</a>";
  for (size_t i = 0; i < input.runs.size(); ++i) {
    h += "<a href=\"#run-" + std::to_string(i) + "\">Run " + Esc(input.runs[i]->run.name) + "</a>";
  }
  if (input.conversations) h += "<a href=\"#conversations\">Conversations</a>";
  h += "</nav></header><main>";
  if (!input.trends.empty()) {
    h += "<section id=\"trends\"><h2>Round-over-round trends</h2><p class=\"bf-note\">Each point "
         "is one round's value with its 95% interval; over-refusal (dashed) is the trade-off the "
         "defect rates are weighed against.</p>";
    for (const HtmlTrendChart& chart : input.trends) h += TrendSection(chart);
    h += "</section>";
  }
  if (!input.rate_charts.empty()) {
    h += "<section id=\"attacks\"><h2>Attack success</h2><p class=\"bf-note\">Share of attacks "
         "that reached their objective, with Wilson 95% intervals. Attacks the attacker refused "
         "or drifted from are not counted.</p><div class=\"bf-charts\">";
    for (const HtmlRateChart& chart : input.rate_charts) h += RateChartSection(chart);
    h += "</div></section>";
  }
  for (size_t i = 0; i < input.runs.size(); ++i) h += RunSection(*input.runs[i], i);
  file->Write(h);
  h.clear();

  if (input.conversations) {
    file->Write(
        "<section id=\"conversations\"><h2>Conversations</h2><p class=\"bf-note\">Filter, "
        "search and open any conversation to read it with the judge's score and reason for "
        "every assistant turn. Model text is shown as plain text.</p><div id=\"bf-browser\">"
        "<noscript>The conversation browser needs JavaScript.</noscript></div></section>\n");
    Dictionary runs, families, categories, targets, outcomes, scales;
    json rows = json::array();
    json chunk = json::array();
    int chunk_index = 0;
    auto flush = [&] {
      file->Write("<script type=\"application/json\" id=\"bf-chunk-" +
                  std::to_string(chunk_index++) + "\">" + ScriptJson(chunk) + "</script>\n");
      chunk = json::array();
    };
    BF_RETURN_IF_ERROR(input.conversations([&](const HtmlConversation& c) -> Status {
      int assistant_turns = 0;
      json turns = json::array();
      for (const Message& m : c.turns) {
        if (m.role == Role::kAssistant) ++assistant_turns;
        turns.push_back({RoleName(m.role), m.content});
      }
      rows.push_back({runs.Index(c.run), families.Index(c.family), categories.Index(c.category),
                      targets.Index(c.target), outcomes.Index(c.outcome), c.score,
                      scales.Index(c.scale), c.item_id, assistant_turns});
      json scores = json::array();
      for (const TurnScore& t : c.turn_scores) {
        scores.push_back({t.turn, t.score, t.reason});
      }
      json d = {{"t", std::move(turns)}};
      if (!c.goal.empty()) d["g"] = c.goal;
      if (!c.judge.empty()) d["j"] = c.judge;
      if (!c.reason.empty()) d["r"] = c.reason;
      if (!scores.empty()) d["s"] = std::move(scores);
      chunk.push_back(std::move(d));
      if (static_cast<int>(chunk.size()) == options.conversations_per_chunk) flush();
      return Status::OK();
    }));
    if (!chunk.empty()) flush();
    json index = {{"dicts",
                   {{"run", runs.Values()},
                    {"family", families.Values()},
                    {"category", categories.Values()},
                    {"target", targets.Values()},
                    {"outcome", outcomes.Values()},
                    {"scale", scales.Values()}}},
                  {"rows", std::move(rows)},
                  {"labels", {{"family", input.family_label}, {"score", input.score_label}}},
                  {"chunk", options.conversations_per_chunk},
                  {"page", options.page_size}};
    file->Write("<script type=\"application/json\" id=\"bf-index\">" + ScriptJson(index) +
                "</script>\n");
    file->Write("<script nonce=\"" + nonce + "\">" + kHtmlReportScript + "</script>\n");
  }
  file->Write("</main></body></html>\n");
  return file->Commit();
}

}  // namespace breakfix
