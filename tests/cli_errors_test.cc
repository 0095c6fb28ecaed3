// Bad input never crashes and never half-writes: every mistake is exit code 2 with a message that
// says what was wrong and where.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli_runner.h"

namespace breakfix::testing {
namespace {

void Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(CliErrorsTest, HelpEverywhere) {
  for (const char* cmd : {"eval", "report", "compare", "runs", "suite"}) {
    CliResult r = RunCli({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_TRUE(Has(r.out, "Usage")) << cmd << r.out;
  }
  CliResult top = RunCli({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* cmd : {"eval", "report", "compare", "runs", "suite"})
    EXPECT_TRUE(Has(top.out, cmd));
}

TEST(CliErrorsTest, UsageErrorsAreExitCodeTwo) {
  EXPECT_EQ(RunCli({}).exit_code, 2);
  EXPECT_EQ(RunCli({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(RunCli({"eval", "--no-such-flag"}).exit_code, 2);
  CliResult no_target = RunCli({"eval", "--judge", "refusal"});
  EXPECT_EQ(no_target.exit_code, 2);
  EXPECT_TRUE(Has(no_target.err, "--target")) << no_target.err;
  CliResult bad_spec = RunCli({"eval", "--target", "url=ftp://x,model=m", "--judge", "refusal"});
  EXPECT_EQ(bad_spec.exit_code, 2);
  EXPECT_TRUE(Has(bad_spec.err, "url")) << bad_spec.err;
  CliResult bad_key =
      RunCli({"eval", "--target", "url=http://127.0.0.1:9/v1,colour=red", "--judge", "refusal"});
  EXPECT_EQ(bad_key.exit_code, 2);
  EXPECT_TRUE(Has(bad_key.err, "colour")) << bad_key.err;
  CliResult family = RunCli({"eval", "--target", "url=http://127.0.0.1:9/v1", "--judge", "refusal",
                             "--families", "nope", "--dry-run"});
  EXPECT_EQ(family.exit_code, 2);
  EXPECT_TRUE(Has(family.err, "jailbreak")) << family.err;  // lists the suite's families
}

TEST(CliErrorsTest, ConfigFileErrorsNameFileLineAndColumn) {
  TempDir dir;
  Write(dir / "syntax.yaml", "suite: rai\ntargets: [a, b\nseed: 1\n");
  CliResult syntax = RunCli({"eval", "--config", dir / "syntax.yaml"});
  EXPECT_EQ(syntax.exit_code, 2);
  EXPECT_TRUE(Has(syntax.err, dir / "syntax.yaml:")) << syntax.err;

  Write(dir / "unknown.yaml", "suite: rai\nseeed: 3\n");
  CliResult unknown = RunCli({"eval", "--config", dir / "unknown.yaml"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_TRUE(Has(unknown.err, dir / "unknown.yaml:2:1")) << unknown.err;
  EXPECT_TRUE(Has(unknown.err, "seeed")) << unknown.err;

  Write(dir / "type.yaml", "suite: rai\nseed: many\n");
  CliResult type = RunCli({"eval", "--config", dir / "type.yaml"});
  EXPECT_EQ(type.exit_code, 2);
  EXPECT_TRUE(Has(type.err, dir / "type.yaml:2:7")) << type.err;

  Write(dir / "model.yaml",
        "models:\n  m:\n    url: http://127.0.0.1:9/v1\n    concurrency: lots\ntargets: [m]\n"
        "judge: refusal\n");
  CliResult model = RunCli({"eval", "--config", dir / "model.yaml", "--dry-run"});
  EXPECT_EQ(model.exit_code, 2);
  EXPECT_TRUE(Has(model.err, "concurrency")) << model.err;
  EXPECT_TRUE(Has(model.err, dir / "model.yaml:")) << model.err;

  CliResult missing = RunCli({"eval", "--config", dir / "absent.yaml"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_TRUE(Has(missing.err, "absent.yaml")) << missing.err;
}

TEST(CliErrorsTest, SuiteErrorsNameFileLineAndColumn) {
  TempDir dir;
  Write(dir / "suite.yaml",
        "name: s\nfamilies:\n  - name: f\n    metric: defect_rate\n    threshold: 9\n");
  CliResult r = RunCli({"suite", "check", dir / "suite.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Has(r.err, dir / "suite.yaml:5:")) << r.err;
  CliResult eval =
      RunCli({"eval", "--suite", dir / "suite.yaml", "--target", "url=http://127.0.0.1:9/v1",
              "--judge", "refusal", "--store", dir / "s.db"});
  EXPECT_EQ(eval.exit_code, 2);
  EXPECT_FALSE(std::filesystem::exists(dir / "s.db")) << "nothing written on bad input";
  CliResult unknown = RunCli({"suite", "check", "no-such-suite"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_TRUE(Has(unknown.err, "rai")) << unknown.err;  // lists the built-ins
  CliResult ok = RunCli({"suite", "check", "rai"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_TRUE(Has(ok.out, "jailbreak")) << ok.out;
  CliResult show = RunCli({"suite", "show", "rai"});
  EXPECT_EQ(show.exit_code, 0);
  EXPECT_TRUE(Has(show.out, "families:"));
}

TEST(CliErrorsTest, ReportLookupsAreInputErrors) {
  TempDir dir;
  CliResult no_store = RunCli({"report", "r1", "--store", dir / "none.db"});
  EXPECT_EQ(no_store.exit_code, 2);
  EXPECT_TRUE(Has(no_store.err, "none.db")) << no_store.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "none.db"));
  Write(dir / "junk.db", "this is not a database, just text that is long enough to look like one");
  CliResult junk = RunCli({"runs", "--store", dir / "junk.db"});
  EXPECT_EQ(junk.exit_code, 2);
  EXPECT_TRUE(Has(junk.err, "junk.db")) << junk.err;
  // An empty store made by a dry eval has no runs.
  CliResult dry =
      RunCli({"eval", "--target", "url=http://127.0.0.1:9/v1", "--judge", "refusal", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_TRUE(Has(dry.out, "\"suite\"")) << dry.out;
}

}  // namespace
}  // namespace breakfix::testing
