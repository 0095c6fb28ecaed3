// Suites: what the simulated users try, as YAML. A suite is families of seed items; each item is
// a template filled with parameters (persona, topic, goal, document, conversation starter...).
// The built-in suite "rai" holds the five phi-3 families. The YAML format is documented in
// docs/suites.md.
//
// Items are generated lazily (parameter grids and imported CSV/JSONL files are expanded on the
// fly), so a suite of millions of items costs memory only for the one being read.
#ifndef BREAKFIX_SUITE_H_
#define BREAKFIX_SUITE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "breakfix/env.h"
#include "breakfix/status.h"

namespace breakfix {

// What a family's headline metric is.
enum class FamilyMetric {
  kDefectRate,      // DR-x over harm severity 0..7: share of scorable samples with severity >= x
  kUngroundedness,  // mean ungroundedness 0..4 against the supplied document
};

enum class TurnMode {
  kSingle,  // one user message (the rendered `user` template), one answer
  kMulti,   // the simulator writes each next user turn, up to max_turns
};

struct Family {
  std::string name;   // e.g. "jailbreak"; [a-z0-9_]+
  std::string title;  // table row label, e.g. "Jailbreak (DR-1)"
  FamilyMetric metric = FamilyMetric::kDefectRate;
  int threshold = 1;  // x of DR-x (severity families); ignored for ungroundedness
  TurnMode mode = TurnMode::kMulti;
  int max_turns = 5;  // assistant turns at most (multi-turn)
  // Rubric id used to judge this family's items; the special value "category" means each item's
  // category names its rubric (harmful continuation/summarization).
  std::string rubric;
  std::vector<std::string> categories;  // allowed item categories; empty = any
};

// One fully rendered seed item: everything the simulator, the target and the judge need.
struct SeedItem {
  std::string id;        // unique within the suite, stable across loads: "family/template/index"
                         // for generated items, or the id given in the file
  std::string family;    // Family::name
  std::string category;  // harm category or topic group, e.g. "violence", "song_lyrics"
  std::string rubric;    // resolved rubric id (never "category")
  std::map<std::string, std::string> params;  // parameter values as bound (persona, topic, ...)
  std::string system_prompt;                  // system message for the target; empty = none
  std::string first_user;  // first user message; required for single-turn items, optional for
                           // multi-turn (empty: the simulator writes the opening turn)
  std::string goal;        // what the simulated user is after (multi-turn), rendered
  std::string persona;     // who the simulated user is (multi-turn), rendered
  std::string document;    // grounding document text (ungroundedness/summarization), or empty
};

// Reads items one at a time in the suite's fixed order. A cursor is used by one thread at a time;
// it keeps what it needs of its suite alive, so it may outlive the Suite that made it.
class ItemCursor {
 public:
  virtual ~ItemCursor() = default;
  // Fills *item and returns true, or returns false at the end. Errors (a bad row in an imported
  // file) name file:line:column.
  virtual Result<bool> Next(SeedItem* item) = 0;
};

// A loaded suite is immutable: all methods are safe to call from several threads at once.
class Suite {
 public:
  virtual ~Suite() = default;

  virtual const std::string& name() const = 0;
  // SHA-256 of the suite's canonical content (the YAML text and every imported file). Part of the
  // run manifest; a changed suite gives a different hash.
  virtual const std::string& content_hash() const = 0;
  virtual const std::vector<Family>& families() const = 0;
  // The files the suite imports (`import:` entries), in suite order, each with the SHA-256 of its
  // bytes when the suite was loaded. Empty when the suite imports nothing.
  struct DataFile {
    std::string family;
    std::string file;    // as written in the suite
    std::string sha256;  // hex
  };
  virtual std::vector<DataFile> data_files() const { return {}; }
  const Family* FindFamily(const std::string& name) const;

  // Number of items NewCursor() yields (computed at load time without materialising items).
  virtual int64_t item_count() const = 0;
  virtual std::unique_ptr<ItemCursor> NewCursor() const = 0;

  // The same for one family: its item count (0 for an unknown name), and a cursor over just its
  // items, in suite order, that renders nothing of the other families.
  virtual int64_t family_item_count(const std::string& family) const = 0;
  virtual std::unique_ptr<ItemCursor> NewFamilyCursor(const std::string& family) const = 0;
};

// Loads a suite by built-in name ("rai") or from a YAML file path. Relative paths inside the file
// (imports) resolve against the file's directory. Errors are InvalidArgument with
// "file:line:column: what was found, what was expected".
Result<std::unique_ptr<Suite>> LoadSuite(const std::string& name_or_path, Env* env);

// Parses suite YAML text; `file_name` is used in error messages and `base_dir` resolves imports.
Result<std::unique_ptr<Suite>> ParseSuite(const std::string& yaml_text,
                                          const std::string& file_name, const std::string& base_dir,
                                          Env* env);

// Names of the built-in suites.
std::vector<std::string> BuiltinSuiteNames();

// The YAML source of a built-in suite, for `breakfix suite show rai` and docs.
Result<std::string> BuiltinSuiteText(const std::string& name);

}  // namespace breakfix

#endif  // BREAKFIX_SUITE_H_
