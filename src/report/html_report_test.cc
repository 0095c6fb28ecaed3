#include "breakfix/html_report.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "testing/scratch_dir.h"

namespace breakfix {
namespace {

using nlohmann::json;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

MetricRow Row(const std::string& family, const std::string& category, const std::string& target,
              int64_t defects, int64_t n) {
  MetricRow r;
  r.family = family;
  r.category = category;
  r.target = target;
  r.threshold = 1;
  r.n = n;
  r.scorable = n;
  r.defects = defects;
  r.value = static_cast<double>(defects) / static_cast<double>(n);
  r.ci = WilsonInterval(defects, n);
  r.histogram = {n - defects, defects, 0, 0, 0, 0, 0, 0};
  return r;
}

RunReport TwoTargetReport() {
  RunReport report;
  report.run.id = 1;
  report.run.name = "run<1>";
  report.run.suite_name = "suite\"x'";
  report.run.judge = "judge&co";
  FamilyInfo f;
  f.name = "jailbreak";
  f.title = "Jailbreak <b>(DR-1)</b>";
  report.families.push_back(f);
  report.targets = {"good", "<img src=x onerror=alert(1)>"};
  report.rows.push_back(Row("jailbreak", "", "good", 1, 20));
  report.rows.push_back(Row("jailbreak", "", "<img src=x onerror=alert(1)>", 8, 20));
  report.rows.push_back(Row("jailbreak", "a", "good", 1, 10));
  report.rows.push_back(Row("jailbreak", "a", "<img src=x onerror=alert(1)>", 5, 10));
  report.rows.push_back(Row("jailbreak", "b", "good", 0, 10));
  report.rows.push_back(Row("jailbreak", "b", "<img src=x onerror=alert(1)>", 3, 10));
  return report;
}

TEST(HtmlEscapeTest, EscapesEveryMarkupCharacter) {
  EXPECT_EQ(HtmlEscape("<a href=\"x\" title='y'>&</a>"),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
}

TEST(ScriptSafeJsonTest, NoTextCanCloseTheScriptBlockAndInvalidUtf8IsReplaced) {
  const std::string out = ScriptSafeJson("[\"</script><!-- & \xff\xfe ok\"]");
  EXPECT_EQ(out.find('<'), std::string::npos);
  EXPECT_EQ(out.find('>'), std::string::npos);
  EXPECT_EQ(out.find('&'), std::string::npos);
  const json parsed = json::parse(out);
  EXPECT_EQ(parsed[0].get<std::string>(), "</script><!-- & \xEF\xBF\xBD\xEF\xBF\xBD ok");
}

TEST(HtmlReportTest, HostileTextIsEscapedEverywhereAndDataIsChunked) {
  test_support::ScratchDir dir;
  const std::string path = dir.path() + "/r.html";
  RunReport report = TwoTargetReport();
  HtmlReportInput input;
  input.title = "report </title><script>alert(1)</script>";
  input.runs.push_back(&report);
  input.notes.push_back("<iframe src=javascript:alert(1)>");
  input.conversations = [](const std::function<Status(const HtmlConversation&)>& emit) {
    for (int i = 0; i < 7; ++i) {
      HtmlConversation c;
      c.run = "run<1>";
      c.family = "jailbreak";
      c.category = i % 2 ? "a" : "b";
      c.target = "<img src=x onerror=alert(1)>";
      c.item_id = "item-" + std::to_string(i) + "</script>";
      c.outcome = i == 3 ? "unscorable" : "defect";
      c.score = i == 3 ? -1 : 5;
      c.scale = i == 3 ? "" : "severity";
      c.turns = {{Role::kUser, "hi <script>alert('u')</script>"},
                 {Role::kAssistant, "</script><script>window.pwned=1</script>\xC0\xAF\u202E"}};
      c.turn_scores = {{1, 5, "reason <svg onload=alert(1)>"}};
      BF_RETURN_IF_ERROR(emit(c));
    }
    return Status::OK();
  };
  HtmlReportOptions options;
  options.conversations_per_chunk = 3;
  ASSERT_TRUE(WriteHtmlReport(input, options, path).ok());
  const std::string html = ReadAll(path);

  // Only the page's own script elements exist: 3 data chunks, the index and the browser.
  EXPECT_EQ(Count(html, "<script"), 5u);
  EXPECT_EQ(Count(html, "<script type=\"application/json\" id=\"bf-chunk-"), 3u);
  EXPECT_EQ(Count(html, "</script>"), 5u);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("<iframe"), std::string::npos);
  EXPECT_EQ(html.find("<svg onload"), std::string::npos);
  EXPECT_EQ(html.find("<b>(DR-1)"), std::string::npos);
  EXPECT_NE(html.find("Jailbreak &lt;b&gt;(DR-1)&lt;/b&gt;"), std::string::npos);
  EXPECT_NE(html.find("&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
  // No raw invalid byte reaches the file.
  EXPECT_EQ(html.find("\xC0\xAF"), std::string::npos);
  // The policy allows only the nonce'd script and no network at all.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(html, m, std::regex("script-src 'nonce-([0-9a-f]{32})'")));
  EXPECT_NE(html.find("<script nonce=\"" + m[1].str() + "\">"), std::string::npos);
  EXPECT_NE(html.find("default-src 'none'"), std::string::npos);

  // The data blocks parse back to exactly what went in.
  const std::string open = "<script type=\"application/json\" id=\"bf-index\">";
  const size_t at = html.find(open) + open.size();
  const json index = json::parse(html.substr(at, html.find("</script>", at) - at));
  EXPECT_EQ(index["rows"].size(), 7u);
  EXPECT_EQ(index["dicts"]["target"][0], "<img src=x onerror=alert(1)>");
  EXPECT_EQ(index["rows"][3][5], -1);
  EXPECT_EQ(index["rows"][0][7], "item-0</script>");
  const std::string chunk_open = "<script type=\"application/json\" id=\"bf-chunk-2\">";
  const size_t c2 = html.find(chunk_open) + chunk_open.size();
  const json chunk = json::parse(html.substr(c2, html.find("</script>", c2) - c2));
  ASSERT_EQ(chunk.size(), 1u);  // 7 = 3 + 3 + 1
  EXPECT_EQ(chunk[0]["t"][1][1].get<std::string>().substr(0, 9), "</script>");
  EXPECT_EQ(chunk[0]["s"][0][2], "reason <svg onload=alert(1)>");
}

TEST(HtmlReportTest, TableMarksTheBestTargetAndChartsHaveABarWithWhiskersPerCell) {
  test_support::ScratchDir dir;
  const std::string path = dir.path() + "/r.html";
  RunReport report = TwoTargetReport();
  HtmlReportInput input;
  input.title = "t";
  input.runs.push_back(&report);
  ASSERT_TRUE(WriteHtmlReport(input, HtmlReportOptions{}, path).ok());
  const std::string html = ReadAll(path);
  EXPECT_EQ(Count(html, "class=\"num best\""), 1u);
  // "good" (5.0%) is best; its cell carries the interval.
  EXPECT_NE(html.find("<td class=\"num best\" title=\"20 scored, 0 unscorable, 1 defects\">5.0% "),
            std::string::npos);
  // 3 groups (all, a, b) x 2 targets in the rate chart, 8 scores x 2 targets in the histogram.
  EXPECT_EQ(Count(html, "<rect class=\"bar\""), 6u + 16u);
  EXPECT_EQ(Count(html, "<g class=\"whisker\">"), 6u);
  // Without conversations there is no browser and no script at all.
  EXPECT_EQ(html.find("<script"), std::string::npos);
}

TEST(HtmlReportTest, TrendsAndRateChartsAreDrawn) {
  test_support::ScratchDir dir;
  const std::string path = dir.path() + "/r.html";
  HtmlReportInput input;
  input.title = "cycle";
  HtmlTrendChart trend;
  trend.title = "m";
  trend.rounds = {"r0", "r1", "r2"};
  HtmlTrendSeries jb{"Jailbreak", false, false, {}};
  HtmlTrendSeries over{"Over-refusal", false, true, {}};
  HtmlTrendSeries ground{"Ungroundedness", true, false, {}};
  for (int r = 0; r < 3; ++r) {
    jb.points.push_back({true, 0.3 - 0.1 * r, {0.2 - 0.1 * r, 0.4 - 0.1 * r}, 40});
    over.points.push_back({r != 1, 0.1 + 0.05 * r, {0.05, 0.2 + 0.05 * r}, 40});
    ground.points.push_back({true, 1.5, {1.0, 2.0}, 40});
  }
  trend.series = {jb, over, ground};
  input.trends.push_back(trend);
  HtmlRateChart asr;
  asr.title = "Attack success by strategy";
  asr.bars = {{"crescendo", 10, 4, 0.4, WilsonInterval(4, 10)},
              {"pair", 10, 1, 0.1, WilsonInterval(1, 10)},
              {"empty", 0, 0, 0, {}}};
  input.rate_charts.push_back(asr);
  ASSERT_TRUE(WriteHtmlReport(input, HtmlReportOptions{}, path).ok());
  const std::string html = ReadAll(path);
  EXPECT_EQ(Count(html, "<path class=\"trend\""), 3u);    // two rate lines, one mean line
  EXPECT_EQ(Count(html, "stroke-dasharray"), 1u);         // over-refusal is dashed
  EXPECT_EQ(Count(html, "<circle class=\"point\""), 8u);  // 3 + 2 (r1 missing) + 3
  EXPECT_EQ(Count(html, "<rect class=\"bar\""), 2u);      // the strategy without attacks has none
  EXPECT_NE(html.find("crescendo: 40%"), std::string::npos);
}

TEST(HtmlReportTest, RejectsZeroChunkSize) {
  test_support::ScratchDir dir;
  HtmlReportInput input;
  HtmlReportOptions options;
  options.conversations_per_chunk = 0;
  EXPECT_FALSE(WriteHtmlReport(input, options, dir.path() + "/x.html").ok());
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/x.html"));
}

}  // namespace
}  // namespace breakfix
