#include "breakfix/suite.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "dataset/test_files.h"

namespace breakfix {
namespace {

using dataset::ReadAll;

using dataset::ScratchDir;

Result<std::unique_ptr<Suite>> Parse(const std::string& yaml, const std::string& base_dir = "") {
  return ParseSuite(yaml, "s.yaml", base_dir, Env::Default());
}

// Peak resident memory of this process in KiB (Linux), or -1 when unknown.
int64_t PeakRssKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

constexpr char kGridSuite[] = R"yaml(
name: g
families:
  - name: fam
    turns: single
    rubric: jailbreak
    templates:
      ask:
        system: "sys {{family}}"
        user: "{{category}} {{tone}} {{topic}}"
    grids:
      - template: ask
        category: [a, b]
        params:
          tone: [calm, rude, sly]
          topic: x
)yaml";

TEST(SuiteTest, GridExpandsInOrderWithLastAxisFastest) {
  auto suite = Parse(kGridSuite);
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  EXPECT_EQ((*suite)->name(), "g");
  EXPECT_EQ((*suite)->item_count(), 6);
  std::vector<SeedItem> items = ReadAll(**suite);
  ASSERT_EQ(items.size(), 6u);
  std::vector<std::string> users;
  for (const auto& it : items) users.push_back(it.first_user);
  EXPECT_EQ(users, (std::vector<std::string>{"a calm x", "a rude x", "a sly x", "b calm x",
                                             "b rude x", "b sly x"}));
  EXPECT_EQ(items[0].id, "fam/ask/0000");
  EXPECT_EQ(items[5].id, "fam/ask/0005");
  EXPECT_EQ(items[4].system_prompt, "sys fam");
  EXPECT_EQ(items[4].category, "b");
  EXPECT_EQ(items[4].rubric, "jailbreak");
  EXPECT_EQ(items[4].params,
            (std::map<std::string, std::string>{{"tone", "rude"}, {"topic", "x"}}));
  EXPECT_EQ(items[4].persona, "");  // single-turn: no default persona
}

TEST(SuiteTest, OrderIsExplicitItemsThenGridsThenImportsPerFamily) {
  ScratchDir dir;
  dir.Write("rows.csv", "t\nr1\nr2\n");
  auto suite = Parse(R"yaml(
name: order
families:
  - name: one
    rubric: jailbreak
    templates:
      t: {goal: "{{t}}"}
    import:
      - {file: rows.csv, category: c, columns: {t: t}}
    grids:
      - {category: c, params: {t: [g1, g2]}}
    items:
      - {category: c, params: {t: i1}}
      - {id: named, category: c, params: {t: i2}}
  - name: two
    rubric: jailbreak
    templates:
      t: {goal: "{{t}}"}
    items:
      - {category: c, params: {t: only}}
)yaml",
                     dir.path());
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  EXPECT_EQ((*suite)->item_count(), 7);
  std::vector<std::string> got;
  for (const auto& it : ReadAll(**suite)) got.push_back(it.id + "=" + it.goal);
  EXPECT_EQ(got,
            (std::vector<std::string>{"one/t/0000=i1", "named=i2", "one/t/0002=g1", "one/t/0003=g2",
                                      "one/t/0004=r1", "one/t/0005=r2", "two/t/0000=only"}));
}

TEST(SuiteTest, FamilyCursorAndCountCoverOneFamilyOnly) {
  ScratchDir dir;
  dir.Write("rows.csv", "t\nr1\nr2\n");
  auto suite = Parse(R"yaml(
name: order
families:
  - name: one
    rubric: jailbreak
    templates:
      t: {goal: "{{t}}"}
    import:
      - {file: rows.csv, category: c, columns: {t: t}}
    items:
      - {category: c, params: {t: i1}}
  - name: two
    rubric: jailbreak
    templates:
      t: {goal: "{{t}}"}
    grids:
      - {category: c, params: {t: [g1, g2, g3]}}
)yaml",
                     dir.path());
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  EXPECT_EQ((*suite)->family_item_count("one"), 3);
  EXPECT_EQ((*suite)->family_item_count("two"), 3);
  EXPECT_EQ((*suite)->family_item_count("three"), 0);
  for (const char* family : {"one", "two"}) {
    auto cursor = (*suite)->NewFamilyCursor(family);
    SeedItem item;
    int n = 0;
    while (true) {
      auto r = cursor->Next(&item);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (!*r) break;
      EXPECT_EQ(item.family, family);
      ++n;
    }
    EXPECT_EQ(n, 3) << family;
  }
  auto none = (*suite)->NewFamilyCursor("three");
  SeedItem item;
  auto r = none->Next(&item);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
}

TEST(SuiteTest, MultiTurnItemsGetGoalPersonaAndDefaultPersona) {
  auto suite = Parse(R"yaml(
name: m
families:
  - name: jb
    title: "Jailbreak (DR-1)"
    turns: multi
    max_turns: 3
    rubric: jailbreak
    threshold: 1
    templates:
      with_persona: {goal: "get {{thing}}", persona: "a {{who}}", user: "hello"}
      plain: {goal: "get {{thing}}"}
    items:
      - {template: with_persona, category: c, params: {thing: x, who: pirate}}
      - {template: plain, category: c, params: {thing: y}}
)yaml");
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  const Family* f = (*suite)->FindFamily("jb");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->title, "Jailbreak (DR-1)");
  EXPECT_EQ(f->mode, TurnMode::kMulti);
  EXPECT_EQ(f->max_turns, 3);
  EXPECT_EQ((*suite)->FindFamily("nope"), nullptr);
  auto items = ReadAll(**suite);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].goal, "get x");
  EXPECT_EQ(items[0].persona, "a pirate");
  EXPECT_EQ(items[0].first_user, "hello");
  EXPECT_EQ(items[1].first_user, "");
  EXPECT_FALSE(items[1].persona.empty());
}

TEST(SuiteTest, DocumentsBindTextAndId) {
  auto suite = Parse(R"yaml(
name: d
documents:
  memo: |
    The meeting is on Tuesday.
  notice: "Store closes at 6."
families:
  - name: ungrounded
    metric: ungroundedness
    turns: single
    rubric: ungroundedness
    templates:
      qa: {user: "[{{document_id}}] {{document}}Q: {{q}}"}
    items:
      - {category: qa, document: memo, params: {q: "When?"}}
    grids:
      - {category: qa, document: [memo, notice], params: {q: ["Who?"]}}
)yaml");
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  EXPECT_EQ((*suite)->families()[0].metric, FamilyMetric::kUngroundedness);
  auto items = ReadAll(**suite);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].document, "The meeting is on Tuesday.\n");
  EXPECT_EQ(items[0].params.at("document"), "memo");
  EXPECT_EQ(items[0].first_user, "[memo] The meeting is on Tuesday.\nQ: When?");
  EXPECT_EQ(items[2].document, "Store closes at 6.");
  EXPECT_EQ(items[2].params.at("document"), "notice");
  EXPECT_EQ(items[2].rubric, "ungroundedness");
}

TEST(SuiteTest, RubricCategoryResolvesToEachItemsCategory) {
  auto suite = Parse(R"yaml(
name: r
families:
  - name: cont
    turns: single
    threshold: 3
    rubric: category
    categories: [violence, self_harm]
    templates:
      t: {user: "go"}
    grids:
      - {category: [violence, self_harm]}
)yaml");
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  auto items = ReadAll(**suite);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].rubric, "violence");
  EXPECT_EQ(items[1].rubric, "self_harm");
  EXPECT_EQ((*suite)->families()[0].threshold, 3);
}

constexpr char kSampledSuite[] = R"yaml(
name: s
sample_seed: SEED
families:
  - name: f
    turns: single
    rubric: violence
    templates:
      t: {user: "{{a}}-{{b}}-{{c}}"}
    grids:
      - category: v
        params: {a: [0,1,2,3,4,5,6,7,8,9], b: [0,1,2,3,4,5,6,7,8,9], c: [0,1,2,3,4,5,6,7,8,9]}
        sample: 50
)yaml";

std::vector<std::string> SampledUsers(const std::string& seed) {
  std::string yaml = kSampledSuite;
  yaml.replace(yaml.find("SEED"), 4, seed);
  auto suite = Parse(yaml);
  EXPECT_TRUE(suite.ok()) << suite.status().ToString();
  if (!suite.ok()) return {};
  EXPECT_EQ((*suite)->item_count(), 50);
  std::vector<std::string> users;
  for (const auto& it : ReadAll(**suite)) users.push_back(it.first_user);
  return users;
}

TEST(SuiteTest, SampledGridIsDeterministicWithoutRepeats) {
  std::vector<std::string> first = SampledUsers("7");
  ASSERT_EQ(first.size(), 50u);
  EXPECT_EQ(std::set<std::string>(first.begin(), first.end()).size(), 50u);
  for (const auto& u : first) {
    ASSERT_EQ(u.size(), 5u);  // "d-d-d": a real combination of the grid
    EXPECT_EQ(u[1], '-');
  }
  EXPECT_EQ(SampledUsers("7"), first);  // same seed, same items, same order
  EXPECT_NE(SampledUsers("8"), first);  // another seed picks another subset
}

TEST(SuiteTest, SampleOfWholeGridIsAPermutation) {
  auto suite = Parse(R"yaml(
name: s
families:
  - name: f
    turns: single
    rubric: violence
    templates:
      t: {user: "{{a}}"}
    grids:
      - {category: v, params: {a: [p, q, r, s, t, u, v]}, sample: 7}
)yaml");
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  std::multiset<std::string> users;
  for (const auto& it : ReadAll(**suite)) users.insert(it.first_user);
  EXPECT_EQ(users, (std::multiset<std::string>{"p", "q", "r", "s", "t", "u", "v"}));
}

// "[0, 1, ..., n-1]" as YAML.
std::string YamlRange(int n) {
  std::string out = "[";
  for (int i = 0; i < n; ++i) out += (i ? "," : "") + std::to_string(i);
  return out + "]";
}

TEST(SuiteTest, HugeSampledGridLoadsWithoutMaterialising) {
  // 10^12 combinations; sampling 20 of them must not enumerate the product.
  const std::string axis = YamlRange(1000);
  auto suite = Parse(R"yaml(
name: huge
families:
  - name: f
    turns: single
    rubric: violence
    templates:
      t: {user: "{{a}}.{{b}}.{{c}}.{{d}}"}
    grids:
      - category: v
        sample: 20
        params: {a: )yaml" +
                     axis + ", b: " + axis + ", c: " + axis + ", d: " + axis + "}\n");
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  EXPECT_EQ((*suite)->item_count(), 20);
  auto items = ReadAll(**suite);
  ASSERT_EQ(items.size(), 20u);
  std::set<std::string> users;
  for (const auto& it : items) users.insert(it.first_user);
  EXPECT_EQ(users.size(), 20u);
}

TEST(SuiteTest, HugeUnsampledGridCountsWithoutIterating) {
  const std::string axis = YamlRange(1000);
  auto suite = Parse(R"yaml(
name: huge
families:
  - name: f
    turns: single
    rubric: violence
    templates:
      t: {user: "{{a}}.{{b}}.{{c}}.{{d}}"}
    grids:
      - category: v
        params: {a: )yaml" +
                     axis + ", b: " + axis + ", c: " + axis + ", d: " + axis + "}\n");
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  EXPECT_EQ((*suite)->item_count(), int64_t{1000} * 1000 * 1000 * 1000);
  auto cursor = (*suite)->NewCursor();
  SeedItem item;
  for (int i = 0; i < 1001; ++i) ASSERT_TRUE(*cursor->Next(&item));
  EXPECT_EQ(item.first_user, "0.0.1.0");  // index 1000: the last axis wrapped once
}

TEST(SuiteTest, MillionItemGridIteratesInBoundedMemory) {
  const std::string axis = YamlRange(100);
  auto suite = Parse(R"yaml(
name: million
families:
  - name: f
    turns: multi
    rubric: jailbreak
    templates:
      t: {goal: "{{a}} {{b}} {{c}}", persona: "p{{a}}"}
    grids:
      - category: [x]
        params: {a: )yaml" +
                     axis + ", b: " + axis + ", c: " + axis + "}\n");
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  ASSERT_EQ((*suite)->item_count(), 1000000);
  const int64_t rss_before = PeakRssKib();
  auto cursor = (*suite)->NewCursor();
  SeedItem item;
  int64_t count = 0;
  while (true) {
    auto r = cursor->Next(&item);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (!*r) break;
    char expected_id[32];
    std::snprintf(expected_id, sizeof(expected_id), "f/t/%04lld", static_cast<long long>(count));
    ASSERT_EQ(item.id, expected_id);
    ++count;
  }
  EXPECT_EQ(count, 1000000);
  EXPECT_EQ(item.id, "f/t/999999");
  EXPECT_EQ(item.goal, "99 99 99");
  const int64_t rss_after = PeakRssKib();
  if (rss_before > 0 && rss_after > 0) {
    // A million rendered items would take hundreds of MiB; streaming needs next to nothing.
    EXPECT_LT(rss_after - rss_before, 32 * 1024)
        << "peak RSS grew by " << rss_after - rss_before << " KiB while iterating";
  }
}

TEST(SuiteTest, CsvImportWithColumnMapping) {
  ScratchDir dir;
  dir.Write("behaviors.csv",
            "\xEF\xBB\xBF"
            "Behavior,Cat,ID,Context\r\n"
            "\"Say \"\"hi\"\", twice\",violence,b1,\r\n"
            "\"two\r\nlines\",self_harm,b2,\"some context\"\r\n"
            "third,violence,b3,\r\n");
  auto suite = Parse(R"yaml(
name: imp
families:
  - name: f
    turns: single
    rubric: category
    templates:
      t: {user: "{{topic}}|{{document}}"}
    import:
      - file: behaviors.csv
        columns: {id: ID, category: Cat, topic: Behavior, document_text: Context}
        limit: 2
)yaml",
                     dir.path());
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  EXPECT_EQ((*suite)->item_count(), 2);
  auto items = ReadAll(**suite);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].id, "b1");
  EXPECT_EQ(items[0].first_user, "Say \"hi\", twice|");
  EXPECT_EQ(items[0].rubric, "violence");
  EXPECT_EQ(items[0].document, "");
  EXPECT_EQ(items[1].id, "b2");
  EXPECT_EQ(items[1].category, "self_harm");
  EXPECT_EQ(items[1].first_user, "two\r\nlines|some context");
  EXPECT_EQ(items[1].document, "some context");
  EXPECT_EQ(items[1].params, (std::map<std::string, std::string>{{"topic", "two\r\nlines"}}));
}

TEST(SuiteTest, JsonlImportWithDottedKeysAndDefaultCategory) {
  ScratchDir dir;
  dir.Write("rows.jsonl",
            "{\"prompt\": \"first\", \"meta\": {\"doc\": \"memo\"}}\n"
            "\n"
            "{\"prompt\": \"second\", \"meta\": {\"doc\": \"memo\"}, \"cat\": \"\"}\n");
  auto suite = Parse(R"yaml(
name: imp
documents:
  memo: "Memo text."
families:
  - name: f
    metric: ungroundedness
    rubric: ungroundedness
    turns: single
    templates:
      t: {user: "{{q}} ({{document_id}})"}
    import:
      - file: rows.jsonl
        category: qa
        columns: {q: prompt, document: meta.doc}
)yaml",
                     dir.path());
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  auto items = ReadAll(**suite);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].id, "f/t/0000");
  EXPECT_EQ(items[0].category, "qa");
  EXPECT_EQ(items[0].first_user, "first (memo)");
  EXPECT_EQ(items[1].first_user, "second (memo)");
  EXPECT_EQ(items[1].document, "Memo text.");
}

TEST(SuiteTest, ContentHashChangesWhenAnImportedFileChanges) {
  ScratchDir dir;
  const std::string yaml = R"yaml(
name: h
families:
  - name: f
    rubric: jailbreak
    templates:
      t: {goal: "{{g}}"}
    import:
      - {file: g.csv, category: c, columns: {g: goal}}
)yaml";
  dir.Write("g.csv", "goal\none\ntwo\n");
  auto a = Parse(yaml, dir.path());
  auto b = Parse(yaml, dir.path());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)->content_hash(), (*b)->content_hash());
  EXPECT_EQ((*a)->content_hash().size(), 64u);

  dir.Write("g.csv", "goal\none\ntwO\n");
  auto c = Parse(yaml, dir.path());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_NE((*c)->content_hash(), (*a)->content_hash());

  // The YAML text itself is part of the hash too.
  auto d = Parse(yaml + "\n# a comment\n", dir.path());
  ASSERT_TRUE(d.ok());
  EXPECT_NE((*d)->content_hash(), (*c)->content_hash());
}

TEST(SuiteTest, CursorRefusesAnImportThatChangedAfterLoading) {
  ScratchDir dir;
  dir.Write("g.csv", "goal\none\ntwo\n");
  auto suite = Parse(R"yaml(
name: h
families:
  - name: f
    rubric: jailbreak
    templates:
      t: {goal: "{{g}}"}
    import:
      - {file: g.csv, category: c, columns: {g: goal}}
)yaml",
                     dir.path());
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  dir.Write("g.csv", "goal\nONE\ntwo\n");  // same row count, different bytes
  auto cursor = (*suite)->NewCursor();
  SeedItem item;
  ASSERT_TRUE(*cursor->Next(&item));
  ASSERT_TRUE(*cursor->Next(&item));
  auto r = cursor->Next(&item);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("changed since the suite was loaded"), std::string::npos);
  EXPECT_FALSE(cursor->Next(&item).ok());  // the error is sticky

  dir.Write("g.csv", "goal\none\n");  // fewer rows than counted
  cursor = (*suite)->NewCursor();
  ASSERT_TRUE(*cursor->Next(&item));
  EXPECT_FALSE(cursor->Next(&item).ok());
}

TEST(SuiteTest, ErrorColumnsCountCharactersAndIgnoreTheByteOrderMark) {
  // yaml-cpp counts bytes; messages count characters. "\xC3\xA9" is one character.
  auto bom = Parse("\xEF\xBB\xBFnam: s\n");
  ASSERT_FALSE(bom.ok());
  EXPECT_EQ(bom.status().message().substr(0, 11), "s.yaml:1:1:") << bom.status().message();

  auto accented = Parse("name: s\nfamilies: [{name: f, rubric: \"\xC3\xA9\xC3\xA9\", x: 1}]\n");
  ASSERT_FALSE(accented.ok());
  EXPECT_EQ(accented.status().message().substr(0, 12), "s.yaml:2:36:")  // byte 38
      << accented.status().message();
}

TEST(SuiteTest, CursorsAreIndependent) {
  auto suite = Parse(kGridSuite);
  ASSERT_TRUE(suite.ok());
  auto c1 = (*suite)->NewCursor();
  auto c2 = (*suite)->NewCursor();
  SeedItem a, b;
  ASSERT_TRUE(*c1->Next(&a));
  ASSERT_TRUE(*c1->Next(&a));
  ASSERT_TRUE(*c2->Next(&b));
  EXPECT_EQ(a.id, "fam/ask/0001");
  EXPECT_EQ(b.id, "fam/ask/0000");
}

TEST(SuiteTest, CursorOutlivesTheSuite) {
  std::unique_ptr<ItemCursor> cursor;
  {
    auto suite = Parse(kGridSuite);
    ASSERT_TRUE(suite.ok());
    cursor = (*suite)->NewCursor();
  }
  SeedItem item;
  ASSERT_TRUE(*cursor->Next(&item));
  EXPECT_EQ(item.first_user, "a calm x");
}

TEST(SuiteTest, LoadSuiteReadsFilesAndResolvesImportsNextToThem) {
  ScratchDir dir;
  dir.Write("topics.csv", "t\nalpha\n");
  const std::string path = dir.Write("my.yaml", R"yaml(
name: from-file
families:
  - name: f
    rubric: jailbreak
    templates:
      t: {goal: "{{t}}"}
    import:
      - {file: topics.csv, category: c, columns: {t: t}}
)yaml");
  auto suite = LoadSuite(path, Env::Default());
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  EXPECT_EQ((*suite)->name(), "from-file");
  auto items = ReadAll(**suite);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].goal, "alpha");
}

TEST(SuiteTest, LoadSuiteReportsMissingFilesAndUnknownNames) {
  auto missing = LoadSuite("/nonexistent/dir/suite.yaml", Env::Default());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/dir/suite.yaml"), std::string::npos);

  auto unknown = LoadSuite("no_such_suite", Env::Default());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("unknown suite 'no_such_suite'"), std::string::npos);
  EXPECT_NE(unknown.status().message().find("rai"), std::string::npos);  // lists the built-ins

  auto yaml_name = LoadSuite("rai.yaml", Env::Default());  // a .yaml name is a path, not "rai"
  EXPECT_FALSE(yaml_name.ok());
}

TEST(SuiteTest, BuiltinSuitesAreListedAndReadable) {
  std::vector<std::string> names = BuiltinSuiteNames();
  EXPECT_NE(std::find(names.begin(), names.end(), "rai"), names.end());
  auto text = BuiltinSuiteText("rai");
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("name: rai"), std::string::npos);
  EXPECT_FALSE(BuiltinSuiteText("nope").ok());
}

}  // namespace
}  // namespace breakfix
