// The HTML report end to end: a run whose prompts, replies, judge reasons, family title and
// category names are an XSS corpus goes through `breakfix eval` against a loopback server, then
// `breakfix report --html`; Debian's Chromium (driven by playwright-core, tests/node) opens the
// page, checks the table, a chart and the browser's filters and search, opens every transcript,
// takes a screenshot, and asserts that nothing executed and the page still renders.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "cli_runner.h"
#include "testing/fake_openai_server.h"

namespace breakfix::testing {
namespace {

using nlohmann::json;

// Hostile strings: markup, event handlers, javascript: URLs, script-block breakouts, broken
// markup, bidirectional overrides, template syntax. Each sets window.__xss or opens a dialog
// if it ever runs.
const std::vector<std::string>& Corpus() {
  static const std::vector<std::string> corpus = {
      "<script>window.__xss=1;alert(1)</script>",
      "<img src=x onerror=\"window.__xss=2;alert(2)\">",
      "<svg onload=\"window.__xss=3\"><circle r=40></svg>",
      "<a href=\"javascript:window.__xss=4\">click me</a>",
      "javascript:window.__xss=5",
      "</script><script>window.__xss=6</script>",
      "</pre></td></tr></table></div><b>unclosed <i>markup",
      "<!-- an unclosed comment",
      "<iframe src=\"javascript:window.__xss=9\"></iframe>",
      "\"><script>window.__xss=10</script>",
      "'; window.__xss=11; var x='",
      "\xE2\x80\xAEgnp.exe\xE2\x80\xAC and \xE2\x81\xA7isolated\xE2\x81\xA9 right-to-left",
      "<style>body{display:none}</style>",
      "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=14>",
      "{{constructor.constructor('window.__xss=15')()}}",
      "<body onload=window.__xss=16>",
      "]]><![CDATA[<script>window.__xss=17</script>",
      "\xE2\x80\xA8line\xE2\x80\xA9separators <\\/script>",
      "<meta http-equiv=\"refresh\" content=\"0;url=javascript:window.__xss=19\">",
      "<base href=\"javascript:window.__xss=20//\">",
      "<object data=\"javascript:window.__xss=21\"></object>",
      "<form action=\"javascript:window.__xss=22\"><button>go</button></form>",
  };
  return corpus;
}

int ItemNumber(const std::string& text) {
  std::smatch m;
  if (std::regex_search(text, m, std::regex("ITEM-(\\d+)"))) return std::stoi(m[1]);
  return 0;
}

FakeReply Respond(const FakeRequest& request) {
  FakeReply reply;
  // The item's number appears in the prompt, the reply and the judge's fenced conversation (also
  // in a re-ask, which repeats the conversation before it).
  std::string all;
  for (const Message& m : request.messages) all += m.content + "\n";
  const int i = ItemNumber(all);
  const auto& corpus = Corpus();
  if (request.model == "xss") {
    reply.content = "ITEM-" + std::to_string(i) + " reply " + corpus[(i * 7 + 3) % corpus.size()];
    return reply;
  }
  // The judge: every ninth item gets prose (unscorable after the re-ask); the others a score.
  if (i % 9 == 4) {
    reply.content = "I cannot decide. " + corpus[i % corpus.size()];
    return reply;
  }
  json answer = {{"turns", json::array({{{"turn", 1},
                                         {"score", i % 8},
                                         {"reason", "judged " + corpus[i % corpus.size()]}}})}};
  reply.content = answer.dump();
  return reply;
}

std::string Quoted(const std::string& s) { return json(s).dump(); }

// Two families; 30 single-turn items numbered ITEM-0..ITEM-29, each prompt carrying a payload.
std::string SuiteYaml() {
  const auto& corpus = Corpus();
  std::string y =
      "name: xss-corpus\nfamilies:\n"
      "  - name: jailbreak\n"
      "    title: " +
      Quoted("<script>window.__xss=100</script>Jailbreak (DR-1)") +
      "\n"
      "    turns: single\n    rubric: jailbreak\n"
      "    templates:\n      ask:\n        user: \"{{prompt}}\"\n    items:\n";
  for (int i = 0; i < 24; ++i) {
    const std::string category = i % 2 ? "plain" : "<img src=x onerror=window.__xss=101>";
    y += "      - {category: " + Quoted(category) + ", params: {prompt: " +
         Quoted("ITEM-" + std::to_string(i) + " " + corpus[i % corpus.size()]) + "}}\n";
  }
  y += "  - name: violence\n    title: \"Violence\"\n    turns: single\n    rubric: violence\n"
       "    templates:\n      ask:\n        user: \"{{prompt}}\"\n    items:\n";
  for (int i = 24; i < 30; ++i) {
    y += "      - {category: c, params: {prompt: " +
         Quoted("ITEM-" + std::to_string(i) + " " + corpus[i % corpus.size()]) + "}}\n";
  }
  return y;
}

bool BrowserAvailable(std::string* why) {
  const std::string modules = std::string(BREAKFIX_SOURCE_DIR) + "/tests/node/node_modules";
  if (!std::filesystem::exists("/usr/bin/chromium")) {
    *why = "/usr/bin/chromium is missing (apt-get install chromium)";
    return false;
  }
  if (!std::filesystem::exists(modules + "/playwright-core")) {
    *why = modules + "/playwright-core is missing (npm ci --prefix tests/node)";
    return false;
  }
  if (std::system("node --version >/dev/null 2>&1") != 0) {
    *why = "node is not installed";
    return false;
  }
  return true;
}

TEST(HtmlReportE2ETest, XssCorpusNeverExecutesAndTheReportWorksInChromium) {
  TempDir dir;
  FakeOpenAIServer server(Respond);
  ASSERT_TRUE(server.Start().ok());
  {
    std::FILE* f = std::fopen((dir / "suite.yaml").c_str(), "w");
    ASSERT_NE(f, nullptr);
    const std::string y = SuiteYaml();
    std::fwrite(y.data(), 1, y.size(), f);
    std::fclose(f);
  }
  CliResult eval = RunCli({"eval", "--suite", dir / "suite.yaml", "--target",
                           "name=xss,url=" + server.base_url() + ",model=xss", "--judge",
                           "name=judge,url=" + server.base_url() + ",model=judge", "--store",
                           dir / "runs.db", "--out", dir / "out", "--no-progress"});
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  const json report = json::parse(ReadFileOrEmpty(dir / "out/report.json"));
  const std::string run = report["run"]["name"];
  CliResult html = RunCli({"report", run, "--store", dir / "runs.db", "--html", dir / "r.html"});
  ASSERT_EQ(html.exit_code, 0) << html.err;
  const std::string page = ReadFileOrEmpty(dir / "r.html");
  ASSERT_FALSE(page.empty());
  // Static checks: the only script elements are the page's own (one data chunk, the index, the
  // browser), and no payload appears as markup.
  size_t scripts = 0;
  for (size_t at = page.find("<script"); at != std::string::npos;
       at = page.find("<script", at + 1)) {
    ++scripts;
  }
  EXPECT_EQ(scripts, 3u);
  EXPECT_EQ(page.find("<img"), std::string::npos);
  EXPECT_EQ(page.find("<iframe"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;window.__xss=100&lt;/script&gt;Jailbreak"), std::string::npos);

  // Items 4, 13 and 22 get prose from the judge: unscorable.
  const json want = {
      {"conversations", 30},
      {"unscorable", 3},
      {"families", 2},
      {"search", "window.__xss=6"},
      // The prompts of ITEM-5 and ITEM-27 carry corpus[5] (as do their judge reasons); the reply
      // to ITEM-16 carries corpus[(7 * 16 + 3) % 22] = corpus[5].
      {"search_hits", 3},
      {"literal",
       {"<script>window.__xss=1;alert(1)</script>", "</script><script>window.__xss=6</script>",
        "<img src=x onerror=\"window.__xss=2;alert(2)\">", "judged <svg onload="}}};
  std::string why;
  if (!BrowserAvailable(&why)) {
    if (std::getenv("BREAKFIX_REQUIRE_BROWSER") != nullptr) {
      FAIL() << "BREAKFIX_REQUIRE_BROWSER is set but " << why;
    }
    GTEST_SKIP() << "browser check skipped: " << why;
  }
  const std::string script = std::string(BREAKFIX_SOURCE_DIR) + "/tests/node/html_report_check.mjs";
  const std::string shot = dir / "report.png";
  const std::string out = dir / "check.json";
  {
    std::FILE* f = std::fopen((dir / "expect.json").c_str(), "w");
    ASSERT_NE(f, nullptr);
    const std::string text = want.dump();
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  const std::string command = "node '" + script + "' '" + (dir / "r.html") + "' '" + shot + "' '" +
                              (dir / "expect.json") + "' >'" + out + "' 2>&1";
  const int rc = std::system(command.c_str());
  const std::string result = ReadFileOrEmpty(out);
  EXPECT_EQ(rc, 0) << result;
  EXPECT_NE(result.find("\"ok\":true"), std::string::npos) << result;
  EXPECT_GT(std::filesystem::file_size(shot), 10000u);
  // Keep the screenshot where a developer can look at it.
  const char* keep = std::getenv("BREAKFIX_KEEP_SCREENSHOT");
  if (keep != nullptr)
    std::filesystem::copy_file(shot, keep, std::filesystem::copy_options::overwrite_existing);
}

}  // namespace
}  // namespace breakfix::testing
