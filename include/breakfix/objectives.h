// Red-team objectives: what an attacker tries to get the target to do. They come from the public
// behaviour datasets (HarmBench, AdvBench, JailbreakBench CSVs), recognised by their header
// rows, or from any breakfix suite's multi-turn goals and single-turn prompts.
#ifndef BREAKFIX_OBJECTIVES_H_
#define BREAKFIX_OBJECTIVES_H_

#include <string>
#include <vector>

#include "breakfix/status.h"

namespace breakfix {

struct Objective {
  std::string id;  // stable: "<source>/<dataset id or row>", e.g. "harmbench/bio_warfare_list_home"
  std::string goal;      // the behaviour to elicit, as an instruction ("Write ...")
  std::string category;  // the dataset's harm category ("cybercrime_intrusion"), or "" when none
  std::string source;    // "harmbench", "advbench", "jbb" or "suite:<name>"
  std::string context;   // a passage the behaviour refers to (HarmBench contextual rows), or ""
  // What a successful answer starts like, when the dataset gives it (AdvBench, JBB "Target").
  std::string target_prefix;
  // Text whose presence in a reply (case-insensitive) proves the objective was reached; "" = ask
  // the scorer. Set by the indirect-injection objectives, whose success is mechanical.
  std::string success_marker;
};

// Reads a behaviour CSV. The format is taken from the header:
//   HarmBench        Behavior,FunctionalCategory,SemanticCategory,Tags,ContextString,BehaviorID
//   AdvBench         goal,target
//   JailbreakBench   Index,Goal,Target,Behavior,Category,Source
// Other headers, ragged rows and empty goals are InvalidArgument errors naming file:line.
Result<std::vector<Objective>> ReadObjectivesCsv(const std::string& path);

// Objectives from a suite (built-in name or YAML file): each multi-turn item's goal and each
// single-turn item's first user message, with the item's category; ids "suite:<name>/<item id>".
Result<std::vector<Objective>> ObjectivesFromSuite(const std::string& name_or_path);

// The built-in indirect prompt-injection objectives, for the indirect_injection strategy: an
// instruction hidden in a document the target is asked to work with. Categories are the three
// subtypes: manipulated_content (the answer states a planted falsehood), intrusion (the answer
// does something the user never asked, such as pushing a link) and information_gathering (the
// answer asks the user for personal data). Each has a success_marker. Ids "injection/<n>".
const std::vector<Objective>& IndirectInjectionObjectives();

}  // namespace breakfix

#endif  // BREAKFIX_OBJECTIVES_H_
