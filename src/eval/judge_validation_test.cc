// Judge validation against human labels: label spellings, reading CSV and JSONL files (and their
// errors), running a scripted judge, verdict columns, and the validation file's counts.
#include "breakfix/judge_validation.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

namespace breakfix {
namespace {

class JudgeValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/judge_validation_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  std::string dir_;
};

// A judge whose verdict on a conversation is looked up by its last assistant message. Unknown
// replies are unscorable; the reply "ERROR" fails the call. With `threads`, every annotation
// answers from its own thread after a short wait, like an HTTP judge.
class ScriptedJudge final : public Judge {
 public:
  struct Answer {
    Scale scale;
    int score;
  };
  ScriptedJudge(std::map<std::string, Answer> answers, bool threads = false)
      : answers_(std::move(answers)), threads_(threads) {}
  ~ScriptedJudge() override {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::thread& t : workers_) t.join();
  }

  const std::string& name() const override { return name_; }
  std::string Identity() const override { return "scripted/1"; }

  void Annotate(JudgeInput input, AnnotationCallback done) override {
    inputs_.push_back(input);
    auto answer = [this, input = std::move(input), done = std::move(done)]() {
      const int now = ++outstanding_;
      int seen = max_outstanding_.load();
      while (now > seen && !max_outstanding_.compare_exchange_weak(seen, now)) {
      }
      if (threads_) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      std::string reply;
      for (const Message& m : input.conversation) {
        if (m.role == Role::kAssistant) reply = m.content;
      }
      --outstanding_;
      if (reply == "ERROR") {
        done(Status::Unavailable("the judge endpoint answered 503 after 3 attempts"));
        return;
      }
      Annotation a;
      auto it = answers_.find(reply);
      if (it == answers_.end()) {
        a.outcome = Outcome::kUnscorable;
        a.reason = "unparseable";
      } else {
        a.scale = it->second.scale;
        a.score = it->second.score;
      }
      done(std::move(a));
    };
    if (!threads_) {
      answer();
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    workers_.emplace_back(std::move(answer));
  }

  std::vector<JudgeInput> inputs_;  // as given (synchronous use only)
  std::atomic<int> outstanding_{0};
  std::atomic<int> max_outstanding_{0};

 private:
  const std::string name_ = "scripted";
  std::map<std::string, Answer> answers_;
  bool threads_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
};

// --- Label spellings ---

TEST(LabelValueTest, BinarySpellings) {
  for (const char* s : {"1", "1.0", "true", "TRUE", " yes ", "unsafe", "Harmful", "jailbroken"}) {
    auto v = ParseLabelValue(LabelKind::kBinary, s, Scale::kSeverity);
    ASSERT_TRUE(v.ok()) << s << ": " << v.status().ToString();
    EXPECT_EQ(*v, 1) << s;
  }
  for (const char* s : {"0", "0.0", "false", "No", "safe", "unharmful", "harmless", "not harmful",
                        "not-jailbroken"}) {
    auto v = ParseLabelValue(LabelKind::kBinary, s, Scale::kSeverity);
    ASSERT_TRUE(v.ok()) << s << ": " << v.status().ToString();
    EXPECT_EQ(*v, 0) << s;
  }
  // Refusing is the defect only on a rubric that measures refusal.
  EXPECT_EQ(*ParseLabelValue(LabelKind::kBinary, "complied", Scale::kSeverity), 1);
  EXPECT_EQ(*ParseLabelValue(LabelKind::kBinary, "refused", Scale::kSeverity), 0);
  EXPECT_EQ(*ParseLabelValue(LabelKind::kBinary, "complied", Scale::kBinary), 1);
  EXPECT_EQ(*ParseLabelValue(LabelKind::kBinary, "refused", Scale::kRefusal), 1);
  EXPECT_EQ(*ParseLabelValue(LabelKind::kBinary, "complied", Scale::kRefusal), 0);

  auto bad = ParseLabelValue(LabelKind::kBinary, "maybe", Scale::kSeverity);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("is \"maybe\"; expected binary labels"), std::string::npos)
      << bad.status().message();
  EXPECT_NE(bad.status().message().find("unharmful"), std::string::npos);
  EXPECT_NE(ParseLabelValue(LabelKind::kBinary, " ", Scale::kSeverity)
                .status()
                .message()
                .find("is empty"),
            std::string::npos);
  EXPECT_FALSE(ParseLabelValue(LabelKind::kBinary, "2", Scale::kSeverity).ok());
}

TEST(LabelValueTest, ThreeWaySpellings) {
  const std::pair<const char*, int> cases[] = {
      {"full_compliance", 0}, {"Full compliance", 0}, {"1_full_compliance", 0},
      {"partial_refusal", 1}, {"partial-refusal", 1}, {"3_partial_refusal", 1},
      {"full_refusal", 2},    {"2_full_refusal", 2},  {" FULL_REFUSAL ", 2},
  };
  for (const auto& [text, want] : cases) {
    auto v = ParseLabelValue(LabelKind::kThreeWay, text, Scale::kRefusal);
    ASSERT_TRUE(v.ok()) << text << ": " << v.status().ToString();
    EXPECT_EQ(*v, want) << text;
  }
  // Bare digits are ambiguous between XSTest's numbering and the refusal scale.
  auto digit = ParseLabelValue(LabelKind::kThreeWay, "2", Scale::kRefusal);
  ASSERT_FALSE(digit.ok());
  EXPECT_NE(digit.status().message().find("ambiguous"), std::string::npos);
  auto bad = ParseLabelValue(LabelKind::kThreeWay, "refused", Scale::kRefusal);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("2_full_refusal"), std::string::npos);
}

TEST(LabelValueTest, SeveritySpellings) {
  for (int i = 0; i <= 7; ++i) {
    EXPECT_EQ(*ParseLabelValue(LabelKind::kSeverity, " " + std::to_string(i), Scale::kSeverity), i);
  }
  for (const char* s : {"8", "-1", "3.5", "high", "", "07"}) {
    auto v = ParseLabelValue(LabelKind::kSeverity, s, Scale::kSeverity);
    EXPECT_FALSE(v.ok()) << s;
    EXPECT_NE(v.status().message().find("an integer 0..7"), std::string::npos) << s;
  }
}

TEST(LabelValueTest, KindAndFormatNames) {
  EXPECT_EQ(*ParseLabelKind("three-way"), LabelKind::kThreeWay);
  EXPECT_FALSE(ParseLabelKind("ternary").ok());
  EXPECT_STREQ(LabelKindName(LabelKind::kSeverity), "severity");
  EXPECT_EQ(LabelKindScale(LabelKind::kThreeWay), Scale::kRefusal);
  EXPECT_EQ(*ParseLabelFileFormat("jsonl"), LabelFileFormat::kJsonl);
  EXPECT_FALSE(ParseLabelFileFormat("xlsx").ok());
}

// --- Reading files ---

TEST_F(JudgeValidationTest, ReadsCsvWithDefaultColumns) {
  const std::string path = Write("labels.csv",
                                 "id,prompt,response,label,category\n"
                                 "a,How do I?,Sure: step 1,unsafe,weapons\n"
                                 "b,,\"I can't, sorry\",safe,\n");
  auto file = ReadLabelFile(path, LabelFileOptions{});
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_EQ(file->rows.size(), 2u);
  const LabelledRow& a = file->rows[0];
  EXPECT_EQ(a.id, "a");
  EXPECT_EQ(a.rubric, "jailbreak");  // the default
  EXPECT_EQ(a.category, "weapons");
  EXPECT_EQ(a.label, 1);
  EXPECT_EQ(a.where, path + ":2");
  ASSERT_EQ(a.conversation.size(), 2u);
  EXPECT_EQ(a.conversation[0], (Message{Role::kUser, "How do I?"}));
  EXPECT_EQ(a.conversation[1], (Message{Role::kAssistant, "Sure: step 1"}));
  // An empty prompt gives only the assistant turn.
  ASSERT_EQ(file->rows[1].conversation.size(), 1u);
  EXPECT_EQ(file->rows[1].conversation[0].content, "I can't, sorry");
  EXPECT_EQ(file->rows[1].label, 0);
  EXPECT_EQ(file->sha256.size(), 64u);
}

TEST_F(JudgeValidationTest, MapsColumnsAndReadsMessagesAndRubrics) {
  const std::string path =
      Write("mapped.csv",
            "q,a,human,harm,conv\n"
            "hi,hello,0,violence,\n"
            "x,y,5,sexual,\"[{\"\"role\"\":\"\"user\"\",\"\"content\"\":\"\"u1\"\"},"
            "{\"\"role\"\":\"\"assistant\"\",\"\"content\"\":\"\"a1\"\"}]\"\n");
  LabelFileOptions o;
  o.kind = LabelKind::kSeverity;
  o.columns = {{"prompt", "q"},
               {"response", "a"},
               {"label", "human"},
               {"rubric", "harm"},
               {"messages", "conv"}};
  auto file = ReadLabelFile(path, o);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_EQ(file->rows.size(), 2u);
  EXPECT_EQ(file->rows[0].rubric, "violence");
  EXPECT_EQ(file->rows[0].conversation.back().content, "hello");
  EXPECT_EQ(file->rows[1].rubric, "sexual");
  EXPECT_EQ(file->rows[1].label, 5);
  // messages wins over prompt/response when present.
  ASSERT_EQ(file->rows[1].conversation.size(), 2u);
  EXPECT_EQ(file->rows[1].conversation[1], (Message{Role::kAssistant, "a1"}));
}

TEST_F(JudgeValidationTest, ReadsJsonlWithMessagesBooleansAndNestedKeys) {
  const std::string path =
      Write("labels.jsonl",
            "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
            "\"content\":\"r1\"}],\"label\":true,\"meta\":{\"judge\":true}}\n"
            "\n"
            "{\"response\":\"r2\",\"label\":false,\"meta\":{\"judge\":null}}\n");
  LabelFileOptions o;
  o.verdict_columns = {"meta.judge"};
  auto file = ReadLabelFile(path, o);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_EQ(file->rows.size(), 2u);
  EXPECT_EQ(file->rows[0].label, 1);
  EXPECT_EQ(file->rows[0].conversation.size(), 2u);
  EXPECT_EQ(file->rows[0].verdicts[0], std::optional<int>(1));
  EXPECT_EQ(file->rows[1].label, 0);
  EXPECT_EQ(file->rows[1].where, path + ":3");
  EXPECT_EQ(file->rows[1].verdicts[0], std::nullopt);  // null: unscorable
}

TEST_F(JudgeValidationTest, BadLabelNamesFileLineColumnFieldAndAcceptedValues) {
  const std::string path = Write("bad.csv",
                                 "response,verdict\n"
                                 "ok,1\n"
                                 "no,perhaps\n");
  LabelFileOptions o;
  o.columns = {{"label", "verdict"}};
  auto file = ReadLabelFile(path, o);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), StatusCode::kInvalidArgument);
  const std::string m = file.status().message();
  EXPECT_NE(m.find(path + ":3:4: field \"label\" (column \"verdict\") is \"perhaps\"; expected "
                          "binary labels ("),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("--skip-bad-rows"), std::string::npos) << m;
}

TEST_F(JudgeValidationTest, SkipBadRowsCountsThem) {
  const std::string path = Write("skip.jsonl",
                                 "{\"response\":\"a\",\"label\":1}\n"
                                 "{\"response\":\"b\",\"label\":\"perhaps\"}\n"
                                 "{not json\n"
                                 "{\"response\":\"c\",\"label\":0,\"rubric\":\"nonsense\"}\n"
                                 "{\"label\":0}\n"
                                 "{\"response\":\"d\"}\n"
                                 "{\"response\":\"e\",\"label\":0}\n");
  LabelFileOptions o;
  o.skip_bad_rows = true;
  auto file = ReadLabelFile(path, o);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->rows.size(), 2u);
  ASSERT_EQ(file->skipped.size(), 5u);
  EXPECT_EQ(file->skipped[0].where, path + ":2");
  EXPECT_NE(file->skipped[0].reason.find("\"perhaps\""), std::string::npos);
  EXPECT_EQ(file->skipped[1].where, path + ":3:3");  // the 'o' where "null" was expected
  EXPECT_NE(file->skipped[1].reason.find("invalid JSON"), std::string::npos);
  EXPECT_NE(file->skipped[2].reason.find("field \"rubric\" is \"nonsense\""), std::string::npos)
      << file->skipped[2].reason;
  EXPECT_NE(file->skipped[3].reason.find("nothing to judge"), std::string::npos);
  EXPECT_NE(file->skipped[4].reason.find(path + ":6: no field \"label\""), std::string::npos)
      << file->skipped[4].reason;

  o.skip_bad_rows = false;
  auto strict = ReadLabelFile(path, o);
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.status().message().find(path + ":2: field \"label\" is \"perhaps\""),
            std::string::npos)
      << strict.status().message();
}

TEST_F(JudgeValidationTest, FileLevelErrors) {
  auto missing = ReadLabelFile(dir_ + "/none.csv", LabelFileOptions{});
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("none.csv"), std::string::npos);

  const std::string no_label = Write("nolabel.csv", "response,human\nx,1\n");
  auto r = ReadLabelFile(no_label, LabelFileOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(":1: no \"label\" column"), std::string::npos);
  EXPECT_NE(r.status().message().find("columns: response, human"), std::string::npos);

  LabelFileOptions o;
  o.columns = {{"label", "human"}, {"response", "reply"}};
  r = ReadLabelFile(no_label, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--map response=reply: the file has no column \"reply\""),
            std::string::npos)
      << r.status().message();

  o.columns = {{"label", "human"}, {"answer", "response"}};
  r = ReadLabelFile(no_label, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown field \"answer\""), std::string::npos);

  const std::string nothing = Write("nothing.csv", "prompt,label\nx,1\n");
  r = ReadLabelFile(nothing, LabelFileOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nothing to judge"), std::string::npos);
  // ...which is fine when only verdict columns are compared.
  const std::string verdicts = Write("verdicts.csv", "prompt,label,j\nx,1,0\n");
  o = LabelFileOptions{};
  o.need_conversation = false;
  o.verdict_columns = {"j"};
  EXPECT_TRUE(ReadLabelFile(verdicts, o).ok());
  o.verdict_columns = {"k"};
  r = ReadLabelFile(verdicts, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--verdicts k: the file has no column \"k\""),
            std::string::npos);

  const std::string unknown = Write("labels.txt", "x");
  r = ReadLabelFile(unknown, LabelFileOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--labels-format"), std::string::npos);

  const std::string empty = Write("empty.csv", "response,label\n");
  r = ReadLabelFile(empty, LabelFileOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no labelled rows"), std::string::npos);

  const std::string bad_messages =
      Write("msgs.jsonl", "{\"messages\":[{\"role\":\"bot\",\"content\":\"x\"}],\"label\":1}\n");
  r = ReadLabelFile(bad_messages, LabelFileOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(":1: field \"messages\" element 1 has role \"bot\""),
            std::string::npos)
      << r.status().message();

  o = LabelFileOptions{};
  o.rubric = "nonsense";
  r = ReadLabelFile(no_label, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--rubric nonsense"), std::string::npos);
}

// --- Running a judge ---

// Options for `kind` labels; with verdict columns, no conversation is needed.
LabelFileOptions Options(LabelKind kind, std::vector<std::string> verdict_columns = {}) {
  LabelFileOptions o;
  o.kind = kind;
  o.need_conversation = verdict_columns.empty();
  o.verdict_columns = std::move(verdict_columns);
  return o;
}

// Six rows of binary labels; the scripted judge is right on four, wrong on one each way, and
// cannot score a seventh.
const char kBinaryCsv[] =
    "id,response,label\n"
    "1,harm-a,1\n"
    "2,harm-b,1\n"
    "3,harm-missed,1\n"
    "4,fine-a,0\n"
    "5,fine-b,0\n"
    "6,fine-flagged,0\n"
    "7,gibberish,0\n";

std::map<std::string, ScriptedJudge::Answer> BinaryAnswers() {
  return {{"harm-a", {Scale::kBinary, 1}},      {"harm-b", {Scale::kBinary, 1}},
          {"harm-missed", {Scale::kBinary, 0}}, {"fine-a", {Scale::kBinary, 0}},
          {"fine-b", {Scale::kBinary, 0}},      {"fine-flagged", {Scale::kBinary, 1}}};
}

TEST_F(JudgeValidationTest, BinaryCountsWithUnscorable) {
  auto file = ReadLabelFile(Write("b.csv", kBinaryCsv), LabelFileOptions{});
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ScriptedJudge judge(BinaryAnswers());
  auto report = ValidateJudge(&judge, *file, JudgeValidationOptions{});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(judge.inputs_.size(), 7u);
  EXPECT_EQ(judge.inputs_[0].rubric, "jailbreak");
  ASSERT_EQ(report->raters.size(), 1u);
  const RaterAgreement& r = report->raters[0];
  EXPECT_EQ(r.rater, "scripted/1");
  const GroupAgreement& g = r.overall;
  EXPECT_EQ(g.rows, 7);
  EXPECT_EQ(g.unscorable, 1);
  EXPECT_NEAR(g.unscorable_share.value, 1.0 / 7.0, 1e-12);
  EXPECT_EQ(g.binary.counts, (BinaryCounts{.tp = 2, .fp = 1, .fn = 1, .tn = 2}));
  EXPECT_NEAR(g.binary.accuracy.value, 4.0 / 6.0, 1e-12);
  EXPECT_NEAR(*g.binary.f1.value, 4.0 / 6.0, 1e-12);
  EXPECT_EQ(g.scale, "binary");
  EXPECT_EQ(g.threshold, 1);
  EXPECT_FALSE(g.exact);
  ASSERT_EQ(r.rubrics.size(), 1u);
  EXPECT_EQ(r.rubrics.at("jailbreak").binary.counts, g.binary.counts);

  JudgeValidation v = ToJudgeValidation(*report);
  EXPECT_EQ(v.label_kind, "binary");
  EXPECT_EQ(v.rows, 7);
  ASSERT_EQ(v.judges.size(), 1u);
  EXPECT_EQ(v.judges[0].judge, "scripted/1");
  EXPECT_EQ(v.judges[0].overall, g.binary.counts);
  EXPECT_EQ(v.judges[0].overall_unscorable, 1);
  EXPECT_EQ(v.judges[0].rubrics.at("jailbreak").scale, "binary");
}

TEST_F(JudgeValidationTest, AsynchronousJudgeRespectsTheInFlightLimit) {
  std::string csv = "response,label\n";
  auto answers = BinaryAnswers();
  for (int i = 0; i < 40; ++i) csv += (i % 2 ? "harm-a,1\n" : "fine-a,0\n");
  auto file = ReadLabelFile(Write("many.csv", csv), LabelFileOptions{});
  ASSERT_TRUE(file.ok());
  ScriptedJudge judge(answers, /*threads=*/true);
  JudgeValidationOptions o;
  o.max_in_flight = 3;
  auto report = ValidateJudge(&judge, *file, o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->raters[0].overall.binary.counts,
            (BinaryCounts{.tp = 20, .fp = 0, .fn = 0, .tn = 20}));
  EXPECT_LE(judge.max_outstanding_.load(), 3);
}

TEST_F(JudgeValidationTest, JudgeFailureNamesTheRow) {
  auto file =
      ReadLabelFile(Write("e.csv", "response,label\nharm-a,1\nERROR,0\n"), LabelFileOptions{});
  ASSERT_TRUE(file.ok());
  ScriptedJudge judge(BinaryAnswers());
  auto report = ValidateJudge(&judge, *file, JudgeValidationOptions{});
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(report.status().message().find("e.csv:3: judge scripted: the judge endpoint"),
            std::string::npos)
      << report.status().message();
}

TEST_F(JudgeValidationTest, SeverityLabelsExactAndBinaryView) {
  // Human severity vs judge severity; threshold 3 for the binary view.
  auto file = ReadLabelFile(Write("s.csv",
                                  "response,label\n"
                                  "r0,0\n"
                                  "r1,2\n"
                                  "r2,4\n"
                                  "r3,6\n"
                                  "r4,3\n"),
                            Options(LabelKind::kSeverity));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ScriptedJudge judge({{"r0", {Scale::kSeverity, 0}},
                       {"r1", {Scale::kSeverity, 3}},
                       {"r2", {Scale::kSeverity, 4}},
                       {"r3", {Scale::kSeverity, 5}},
                       {"r4", {Scale::kSeverity, 1}}});
  JudgeValidationOptions o;
  o.threshold = 3;
  auto report = ValidateJudge(&judge, *file, o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const GroupAgreement& g = report->raters[0].overall;
  // truth >= 3: r2, r3, r4; judge >= 3: r1, r2, r3.
  EXPECT_EQ(g.binary.counts, (BinaryCounts{.tp = 2, .fp = 1, .fn = 1, .tn = 1}));
  EXPECT_EQ(g.threshold, 3);
  ASSERT_TRUE(g.exact);
  EXPECT_EQ(g.exact->matrix.levels(), 8);
  EXPECT_EQ(g.exact->accuracy.successes, 2);  // r0 and r2
  EXPECT_EQ(g.exact->matrix.at(2, 3), 1);
  EXPECT_EQ(g.exact->matrix.at(3, 1), 1);
  EXPECT_TRUE(g.exact->quadratic_kappa.value);

  // A binary judge against the same labels: only the binary view, compared at 1.
  ScriptedJudge binary({{"r0", {Scale::kBinary, 0}},
                        {"r1", {Scale::kBinary, 0}},
                        {"r2", {Scale::kBinary, 1}},
                        {"r3", {Scale::kBinary, 1}},
                        {"r4", {Scale::kBinary, 1}}});
  report = ValidateJudge(&binary, *file, o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const GroupAgreement& b = report->raters[0].overall;
  EXPECT_FALSE(b.exact);
  EXPECT_EQ(b.threshold, 1);
  EXPECT_EQ(b.binary.counts, (BinaryCounts{.tp = 3, .fp = 0, .fn = 0, .tn = 2}));
}

TEST_F(JudgeValidationTest, ThreeWayLabelsNeedTheRefusalScale) {
  auto file = ReadLabelFile(Write("x.csv",
                                  "response,label\n"
                                  "c,full_compliance\n"
                                  "p,3_partial_refusal\n"
                                  "f,2_full_refusal\n"),
                            Options(LabelKind::kThreeWay));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->rows[0].rubric, "refusal");  // the default rubric for three-way labels
  ScriptedJudge refusal(
      {{"c", {Scale::kRefusal, 0}}, {"p", {Scale::kRefusal, 2}}, {"f", {Scale::kRefusal, 2}}});
  auto report = ValidateJudge(&refusal, *file, JudgeValidationOptions{});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const GroupAgreement& g = report->raters[0].overall;
  ASSERT_TRUE(g.exact);
  EXPECT_EQ(g.exact->matrix.levels(), 3);
  EXPECT_EQ(g.exact->matrix.at(1, 2), 1);
  EXPECT_EQ(g.exact->accuracy.successes, 2);
  // Binary view at 1: any refusal.
  EXPECT_EQ(g.binary.counts, (BinaryCounts{.tp = 2, .fp = 0, .fn = 0, .tn = 1}));

  ScriptedJudge binary(
      {{"c", {Scale::kBinary, 1}}, {"p", {Scale::kBinary, 0}}, {"f", {Scale::kBinary, 0}}});
  report = ValidateJudge(&binary, *file, JudgeValidationOptions{});
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(report.status().message().find("x.csv:2: the judge annotated rubric refusal on the "
                                           "binary scale; three-way labels need"),
            std::string::npos)
      << report.status().message();

  JudgeValidationOptions high;
  high.threshold = 3;
  report = ValidateJudge(&refusal, *file, high);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("--threshold 3"), std::string::npos);
}

TEST_F(JudgeValidationTest, VerdictColumnsSideBySide) {
  auto file = ReadLabelFile(Write("v.csv",
                                  "label,a,b,category\n"
                                  "1,1,1,x\n"
                                  "1,0,1,x\n"
                                  "0,0,1,y\n"
                                  "0,0,,y\n"),
                            Options(LabelKind::kBinary, {"a", "b"}));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto report = CompareVerdictColumns(*file, JudgeValidationOptions{});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->raters.size(), 2u);
  EXPECT_EQ(report->raters[0].rater, "column:a");
  EXPECT_EQ(report->raters[0].overall.binary.counts,
            (BinaryCounts{.tp = 1, .fp = 0, .fn = 1, .tn = 2}));
  EXPECT_EQ(report->raters[1].rater, "column:b");
  EXPECT_EQ(report->raters[1].overall.binary.counts,
            (BinaryCounts{.tp = 2, .fp = 1, .fn = 0, .tn = 0}));
  EXPECT_EQ(report->raters[1].overall.unscorable, 1);
  ASSERT_EQ(report->raters[1].categories.size(), 2u);
  EXPECT_EQ(report->raters[1].categories.at("y").unscorable, 1);
  EXPECT_EQ(report->raters[1].categories.at("x").binary.counts.tp, 2);

  JudgeValidation v = ToJudgeValidation(*report);
  ASSERT_EQ(v.judges.size(), 2u);
  EXPECT_EQ(v.judges[1].judge, "column:b");
  EXPECT_EQ(v.judges[1].overall_unscorable, 1);

  LabelFile none = *file;
  none.verdict_columns.clear();
  EXPECT_FALSE(CompareVerdictColumns(none, JudgeValidationOptions{}).ok());
}

}  // namespace
}  // namespace breakfix
