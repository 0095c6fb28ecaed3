// TemplateText: a template field ("system", "user", "goal", "persona") with {{name}}
// placeholders, parsed once at load and rendered per item.
//
// Syntax: "{{name}}" or "{{ name }}", where name is letters, digits and '_'. There is no escape;
// a "{{" that does not open a well-formed placeholder is an error, so typos surface at load time
// instead of reaching a model. Substituted values are not scanned again. Immutable after Parse();
// safe to share between threads.
#ifndef BREAKFIX_DATASET_TEMPLATE_TEXT_H_
#define BREAKFIX_DATASET_TEMPLATE_TEXT_H_

#include <map>
#include <string>
#include <vector>

#include "breakfix/status.h"
#include "dataset/location.h"

namespace breakfix::dataset {

class TemplateText {
 public:
  TemplateText() = default;

  // Parses `text`; `where` (the field's position) is used in errors.
  static Result<TemplateText> Parse(const std::string& text, const Location& where);

  // Placeholder names in order of first use, without repeats.
  const std::vector<std::string>& placeholders() const { return placeholders_; }
  const Location& where() const { return where_; }
  bool empty() const { return segments_.empty(); }

  // The text with every placeholder replaced by its value in `bindings`; a name missing there
  // renders as nothing (callers validate bindings at load, so this does not happen in practice).
  std::string Render(const std::map<std::string, std::string>& bindings) const;

 private:
  struct Segment {
    bool is_placeholder = false;
    std::string text;  // literal text, or the placeholder's name
  };
  std::vector<Segment> segments_;
  std::vector<std::string> placeholders_;
  Location where_;
};

}  // namespace breakfix::dataset

#endif  // BREAKFIX_DATASET_TEMPLATE_TEXT_H_
