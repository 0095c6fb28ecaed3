// Turns suite YAML text into a validated SuiteSpec. All checking happens here, at load time:
// structure and types, references (templates, documents, rubrics, categories), placeholders
// against every item's bindings, item ids, and one full pass over each imported file (counting,
// checking and hashing its rows). After a successful parse, rendering items cannot fail except
// when an imported file changes on disk.
#ifndef BREAKFIX_DATASET_SUITE_PARSER_H_
#define BREAKFIX_DATASET_SUITE_PARSER_H_

#include <memory>
#include <string>

#include "breakfix/env.h"
#include "breakfix/status.h"
#include "dataset/suite_spec.h"

namespace breakfix::dataset {

// `file_name` appears in error messages; `base_dir` resolves import paths (empty: the current
// directory). An import path that starts with ${NAME}/ takes the folder from the environment
// variable NAME, read through `env` (null: Env::Default()). Errors are InvalidArgument
// "file:line:column: <found>; expected <what>".
Result<std::shared_ptr<const SuiteSpec>> ParseSuiteSpec(const std::string& yaml_text,
                                                        const std::string& file_name,
                                                        const std::string& base_dir,
                                                        Env* env = nullptr);

}  // namespace breakfix::dataset

#endif  // BREAKFIX_DATASET_SUITE_PARSER_H_
