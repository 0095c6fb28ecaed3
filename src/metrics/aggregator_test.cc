// MetricsAggregator against the golden file testdata/aggregate_basic.txt, plus order and seed
// independence.
#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "breakfix/env.h"
#include "breakfix/metrics.h"

namespace breakfix {
namespace {

constexpr double kTol = 1e-4;

struct ExpectedRow {
  int lineno = 0;
  std::map<std::string, std::string> fields;
};

struct GoldenCase {
  AggregateOptions options;
  std::vector<ScoredSample> samples;
  std::vector<ExpectedRow> rows;
};

Scale ParseScale(const std::string& s, const std::string& where) {
  if (s == "severity") return Scale::kSeverity;
  if (s == "ungroundedness") return Scale::kUngroundedness;
  if (s == "binary") return Scale::kBinary;
  ADD_FAILURE() << where << ": unknown scale " << s;
  return Scale::kSeverity;
}

GoldenCase LoadCase(const std::string& name) {
  const std::string path = std::string(BREAKFIX_SOURCE_DIR) + "/src/metrics/testdata/" + name;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  GoldenCase c;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(lineno);
    std::istringstream ss(line);
    std::string directive;
    ss >> directive;
    if (directive == "threshold") {
      std::string family;
      int x = 0;
      ss >> family >> x;
      c.options.thresholds[family] = x;
    } else if (directive == "mean") {
      std::string family;
      ss >> family;
      c.options.mean_families[family] = true;
    } else if (directive == "resamples") {
      ss >> c.options.bootstrap_resamples;
    } else if (directive == "seed") {
      ss >> c.options.seed;
    } else if (directive == "sample") {
      ScoredSample s;
      std::string outcome, scale;
      ss >> s.family >> s.category >> s.target >> outcome >> scale >> s.score;
      if (s.category == "-") s.category.clear();
      if (outcome != "scored" && outcome != "unscorable") ADD_FAILURE() << where << ": outcome";
      s.outcome = outcome == "scored" ? Outcome::kScored : Outcome::kUnscorable;
      s.scale = ParseScale(scale, where);
      c.samples.push_back(s);
    } else if (directive == "row") {
      ExpectedRow r;
      r.lineno = lineno;
      std::string kv;
      while (ss >> kv) {
        size_t eq = kv.find('=');
        if (eq == std::string::npos) {
          ADD_FAILURE() << where << ": expected key=value, got " << kv;
          continue;
        }
        r.fields[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
      c.rows.push_back(r);
      continue;
    } else {
      ADD_FAILURE() << where << ": unknown directive " << directive;
      continue;
    }
    if (ss.fail()) ADD_FAILURE() << where << ": malformed " << directive << " line";
  }
  return c;
}

std::string JoinHistogram(const std::vector<int64_t>& h) {
  std::string out;
  for (size_t i = 0; i < h.size(); ++i) out += (i ? "," : "") + std::to_string(h[i]);
  return out;
}

void CheckRow(const MetricRow& row, const ExpectedRow& e) {
  SCOPED_TRACE("aggregate_basic.txt:" + std::to_string(e.lineno));
  auto f = [&](const std::string& key) {
    auto it = e.fields.find(key);
    if (it == e.fields.end()) {
      ADD_FAILURE() << "expected row lacks " << key;
      return std::string();
    }
    return it->second;
  };
  EXPECT_EQ(row.family, f("family"));
  EXPECT_EQ(row.category, f("category"));
  EXPECT_EQ(row.target, f("target"));
  EXPECT_EQ(row.is_mean ? "mean" : "rate", f("kind"));
  EXPECT_EQ(row.threshold, std::stoi(f("threshold")));
  EXPECT_EQ(row.n, std::stoll(f("n")));
  EXPECT_EQ(row.scorable, std::stoll(f("scorable")));
  EXPECT_EQ(row.unscorable, std::stoll(f("unscorable")));
  EXPECT_EQ(row.defects, std::stoll(f("defects")));
  EXPECT_NEAR(row.value, std::stod(f("value")), kTol);
  EXPECT_EQ(JoinHistogram(row.histogram), f("hist"));
  if (f("lo") == "~" || f("hi") == "~") {
    int lo_score = -1, hi_score = -1;
    for (size_t s = 0; s < row.histogram.size(); ++s) {
      if (row.histogram[s] > 0) {
        if (lo_score < 0) lo_score = static_cast<int>(s);
        hi_score = static_cast<int>(s);
      }
    }
    EXPECT_LE(lo_score, row.ci.lo);
    EXPECT_LT(row.ci.lo, row.value);
    EXPECT_GT(row.ci.hi, row.value);
    EXPECT_LE(row.ci.hi, hi_score);
  } else {
    EXPECT_NEAR(row.ci.lo, std::stod(f("lo")), kTol);
    EXPECT_NEAR(row.ci.hi, std::stod(f("hi")), kTol);
  }
}

TEST(MetricsAggregatorTest, Golden) {
  GoldenCase c = LoadCase("aggregate_basic.txt");
  ASSERT_FALSE(c.samples.empty());
  MetricsAggregator agg(c.options);
  for (const ScoredSample& s : c.samples) agg.Add(s);
  std::vector<MetricRow> rows = agg.Finish();
  ASSERT_EQ(rows.size(), c.rows.size());
  for (size_t i = 0; i < rows.size(); ++i) CheckRow(rows[i], c.rows[i]);
}

TEST(MetricsAggregatorTest, OrderOfSamplesDoesNotMatter) {
  GoldenCase c = LoadCase("aggregate_basic.txt");
  // A cell's scale is decided by its first valid scored sample, so a cell that mixes scales
  // (the golden file's deliberate binary jailbreak sample) depends on order by nature.
  std::vector<ScoredSample> consistent;
  for (const ScoredSample& s : c.samples) {
    if (s.family == "jailbreak" && s.scale == Scale::kBinary) continue;
    consistent.push_back(s);
  }
  MetricsAggregator forward(c.options);
  for (const ScoredSample& s : consistent) forward.Add(s);
  std::vector<ScoredSample> shuffled = consistent;
  std::reverse(shuffled.begin(), shuffled.end());
  MetricsAggregator backward(c.options);
  for (const ScoredSample& s : shuffled) backward.Add(s);
  std::vector<MetricRow> a = forward.Finish(), b = backward.Finish();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].family, b[i].family);
    EXPECT_EQ(a[i].category, b[i].category);
    EXPECT_EQ(a[i].target, b[i].target);
    EXPECT_EQ(a[i].defects, b[i].defects);
    EXPECT_EQ(a[i].histogram, b[i].histogram);
    EXPECT_DOUBLE_EQ(a[i].value, b[i].value);
    // The bootstrap resamples the bytes in arrival order, so bounds may differ slightly.
    EXPECT_NEAR(a[i].ci.lo, b[i].ci.lo, 0.5);
  }
}

TEST(MetricsAggregatorTest, DeterministicAndIndependentOfOtherCells) {
  AggregateOptions options;
  options.mean_families["ungroundedness"] = true;
  options.bootstrap_resamples = 300;
  options.seed = 11;
  Random rng(5);
  std::vector<ScoredSample> samples;
  for (int i = 0; i < 60; ++i) {
    ScoredSample s;
    s.family = "ungroundedness";
    s.category = "news";
    s.target = "phi3";
    s.scale = Scale::kUngroundedness;
    s.score = static_cast<int>(rng.Below(5));
    samples.push_back(s);
  }
  MetricsAggregator a(options), b(options);
  for (const ScoredSample& s : samples) {
    a.Add(s);
    b.Add(s);
  }
  // b also holds another family and target; a's rows must not move.
  for (int i = 0; i < 10; ++i) {
    ScoredSample other = samples[i];
    other.family = "aardvark";
    b.Add(other);
    other.family = "ungroundedness";
    other.target = "other";
    b.Add(other);
  }
  std::vector<MetricRow> ra = a.Finish(), rb = b.Finish();
  EXPECT_EQ(ra.size(), 2u);
  auto find = [](const std::vector<MetricRow>& rows, const std::string& category) {
    for (const MetricRow& r : rows) {
      if (r.family == "ungroundedness" && r.category == category && r.target == "phi3") return r;
    }
    ADD_FAILURE() << "no row for category '" << category << "'";
    return MetricRow();
  };
  for (const char* category : {"", "news"}) {
    MetricRow x = find(ra, category), y = find(rb, category);
    EXPECT_EQ(x.ci.lo, y.ci.lo);
    EXPECT_EQ(x.ci.hi, y.ci.hi);
    EXPECT_EQ(x.n, 60);
  }
  std::vector<MetricRow> again = a.Finish();
  EXPECT_EQ(again[0].ci.lo, ra[0].ci.lo);
}

// Regression: an unscorable sample from a judge on another scale (the refusal judge on an
// ungroundedness item) arrived first and fixed the cell's scale, so every later scored sample
// was thrown out as unscorable.
TEST(MetricsAggregatorTest, UnscorableFirstSampleDoesNotFixTheScale) {
  AggregateOptions options;
  options.mean_families["ungroundedness"] = true;
  MetricsAggregator agg(options);
  ScoredSample s;
  s.family = "ungroundedness";
  s.target = "t";
  s.outcome = Outcome::kUnscorable;
  s.scale = Scale::kBinary;
  agg.Add(s);
  s.outcome = Outcome::kScored;
  s.scale = Scale::kUngroundedness;
  s.score = 3;
  agg.Add(s);
  s.score = 4;
  agg.Add(s);
  std::vector<MetricRow> rows = agg.Finish();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].scorable, 2);
  EXPECT_EQ(rows[0].unscorable, 1);
  EXPECT_NEAR(rows[0].value, 3.5, 1e-12);
  EXPECT_EQ(rows[0].histogram, (std::vector<int64_t>{0, 0, 0, 1, 1}));
}

TEST(MetricsAggregatorTest, EmptyAggregatorHasNoRows) {
  MetricsAggregator agg(AggregateOptions{});
  EXPECT_TRUE(agg.Finish().empty());
}

TEST(MetricsAggregatorTest, NegativeScoreIsUnscorableNotACrash) {
  MetricsAggregator agg(AggregateOptions{});
  ScoredSample s;
  s.family = "f";
  s.target = "t";
  s.score = -3;
  agg.Add(s);
  std::vector<MetricRow> rows = agg.Finish();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].unscorable, 1);
  EXPECT_EQ(rows[0].scorable, 0);
  EXPECT_EQ(rows[0].ci.hi, 1);
}

}  // namespace
}  // namespace breakfix
