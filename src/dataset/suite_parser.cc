#include "dataset/suite_parser.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>

#include "breakfix/hash.h"
#include "dataset/import_rows.h"

namespace breakfix::dataset {
namespace {

// Largest number of items a grid or a suite may describe; keeps index arithmetic in int64.
constexpr int64_t kMaxItems = int64_t{1} << 62;

// Names a template may use besides the item's own parameters, and that parameters may not take.
constexpr const char* kReservedNames[] = {"id",          "category",      "document",
                                          "document_id", "document_text", "family"};

bool IsReserved(const std::string& name) {
  for (const char* r : kReservedNames) {
    if (name == r) return true;
  }
  return false;
}

// [a-z0-9_]+, or with `wide` also A-Z and '-'.
bool IsName(const std::string& s, bool wide) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              (wide && ((c >= 'A' && c <= 'Z') || c == '-'));
    if (!ok) return false;
  }
  return true;
}

// Parameter names are used in {{name}} placeholders: letters, digits and '_'.
bool IsParamName(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  }
  return true;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

std::string Join(std::initializer_list<const char*> items) {
  std::vector<std::string> v(items.begin(), items.end());
  return Join(v);
}

bool HasSuffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// yaml-cpp marks count bytes (0-based) and skip a leading byte order mark; messages count
// characters (1-based). The mark's line starts at byte pos - column of the text after the mark.
Location MarkToLocation(const YAML::Mark& m, const std::string& text, const std::string& file) {
  if (m.is_null()) return {file, 1, 1};
  const int64_t bom = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
  const int64_t end = bom + m.pos;
  const int64_t line_start = end - m.column;
  int64_t column = m.column + 1;
  if (m.pos >= 0 && line_start >= bom && end <= static_cast<int64_t>(text.size())) {
    column = CountCodePoints(text, static_cast<size_t>(line_start), static_cast<size_t>(end)) + 1;
  }
  return {file, m.line + 1, column};
}

// A map node's entries in the order written, with its position.
struct MapFields {
  YAML::Node node;
  std::vector<std::pair<std::string, YAML::Node>> entries;
  std::vector<YAML::Node> keys;

  std::optional<YAML::Node> Get(const std::string& key) const {
    for (const auto& [k, v] : entries) {
      if (k == key) return v;
    }
    return std::nullopt;
  }
};

class SuiteParser {
 public:
  SuiteParser(std::string file_name, std::string base_dir, Env* env) : env_(env) {
    spec_ = std::make_shared<SuiteSpec>();
    spec_->file_name = std::move(file_name);
    spec_->base_dir = std::move(base_dir);
  }

  Result<std::shared_ptr<const SuiteSpec>> Parse(const std::string& text);

 private:
  Location At(const YAML::Node& n) const {
    return MarkToLocation(n.Mark(), *text_, spec_->file_name);
  }
  Env* env_;

  static std::string Describe(const YAML::Node& n) {
    if (!n.IsDefined()) return "nothing";
    if (n.IsNull()) return "an empty value";
    if (n.IsSequence()) return "a list";
    if (n.IsMap()) return "a map";
    std::string s = n.Scalar();
    bool cut = s.size() > 40;
    if (cut) s.resize(40);
    std::replace(s.begin(), s.end(), '\n', ' ');
    return "\"" + s + (cut ? "...\"" : "\"");
  }

  Status Wrong(const YAML::Node& n, const std::string& expected) const {
    return ErrorAt(At(n), Describe(n), expected);
  }

  Result<MapFields> ReadMap(const YAML::Node& n, const std::string& what,
                            std::initializer_list<const char*> allowed) const;
  Result<std::string> ReadString(const YAML::Node& n, const std::string& expected) const;
  Result<int64_t> ReadInt(const YAML::Node& n, int64_t min, int64_t max) const;
  Result<std::vector<std::string>> ReadStringOrList(const YAML::Node& n,
                                                    const std::string& expected) const;
  Status Missing(const MapFields& m, const std::string& what, const std::string& key,
                 const std::string& expected) const {
    return ErrorAt(At(m.node), what + " has no '" + key + "'", expected);
  }

  Status ParseDocuments(const YAML::Node& n);
  Result<int> FindDocument(const YAML::Node& n) const;
  Status ParseFamily(const YAML::Node& n, std::map<std::string, Location>* names);
  Status ParseFamilySettings(const MapFields& m, FamilySpec* f);
  Status ParseTemplates(const YAML::Node& n, FamilySpec* f);
  Result<int> FindTemplate(const MapFields& m, const FamilySpec& f, const std::string& what) const;
  Status ParseItem(const YAML::Node& n, FamilySpec* f);
  Status ParseGrid(const YAML::Node& n, size_t index, FamilySpec* f);
  Status ParseImport(const YAML::Node& n, FamilySpec* f);
  Result<std::vector<std::pair<std::string, YAML::Node>>> ReadParams(const YAML::Node& n) const;
  Status CheckPlaceholders(const TemplateSpec& t, const std::set<std::string>& names,
                           const std::string& source) const;
  Status CountImports();
  Status CheckIds();
  bool CollidesWithGenerated(const std::string& id, std::string* other) const;

  std::shared_ptr<SuiteSpec> spec_;
  const std::string* text_ = nullptr;    // the YAML being parsed, for positions
  std::map<std::string, Location> ids_;  // every explicit id and where it was given
};

Result<MapFields> SuiteParser::ReadMap(const YAML::Node& n, const std::string& what,
                                       std::initializer_list<const char*> allowed) const {
  if (!n.IsMap()) return Wrong(n, what + " (a map of " + Join(allowed) + ")");
  MapFields m;
  m.node = n;
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (!it->first.IsScalar()) return Wrong(it->first, "a plain key in " + what);
    std::string key = it->first.Scalar();
    if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }) ==
        allowed.end()) {
      return ErrorAt(At(it->first), "unknown key '" + key + "' in " + what,
                     "one of: " + Join(allowed));
    }
    for (size_t i = 0; i < m.entries.size(); ++i) {
      if (m.entries[i].first == key) {
        return ErrorAt(At(it->first),
                       "duplicate key '" + key + "' (first at " + At(m.keys[i]).ToString() + ")",
                       "each key once in " + what);
      }
    }
    m.entries.emplace_back(key, it->second);
    m.keys.push_back(it->first);
  }
  return m;
}

Result<std::string> SuiteParser::ReadString(const YAML::Node& n,
                                            const std::string& expected) const {
  if (!n.IsScalar()) return Wrong(n, expected);
  return n.Scalar();
}

Result<int64_t> SuiteParser::ReadInt(const YAML::Node& n, int64_t min, int64_t max) const {
  const std::string expected =
      "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (!n.IsScalar()) return Wrong(n, expected);
  const std::string& s = n.Scalar();
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return Wrong(n, expected);
  if (v < min || v > max) return ErrorAt(At(n), std::to_string(v), expected);
  return v;
}

Result<std::vector<std::string>> SuiteParser::ReadStringOrList(const YAML::Node& n,
                                                               const std::string& expected) const {
  std::vector<std::string> out;
  if (n.IsScalar()) {
    out.push_back(n.Scalar());
    return out;
  }
  if (!n.IsSequence() || n.size() == 0) {
    return Wrong(n, expected + " (a text value or a non-empty list of them)");
  }
  for (const auto& v : n) {
    if (!v.IsScalar()) return Wrong(v, expected + " (a text value)");
    out.push_back(v.Scalar());
  }
  return out;
}

Status SuiteParser::ParseDocuments(const YAML::Node& n) {
  if (!n.IsMap()) return Wrong(n, "a map of document id to document text");
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (!it->first.IsScalar() || !IsName(it->first.Scalar(), true)) {
      return Wrong(it->first, "a document id made of letters, digits, '_' and '-'");
    }
    DocumentSpec d;
    d.id = it->first.Scalar();
    d.where = At(it->first);
    for (const auto& other : spec_->documents) {
      if (other.id == d.id) {
        return ErrorAt(
            d.where,
            "duplicate document id '" + d.id + "' (first at " + other.where.ToString() + ")",
            "unique document ids");
      }
    }
    BF_ASSIGN_OR_RETURN(d.text, ReadString(it->second, "the document's text"));
    if (d.text.empty()) return Wrong(it->second, "non-empty document text");
    spec_->documents.push_back(std::move(d));
  }
  return Status::OK();
}

Result<int> SuiteParser::FindDocument(const YAML::Node& n) const {
  BF_ASSIGN_OR_RETURN(std::string id, ReadString(n, "a document id"));
  std::vector<std::string> ids;
  for (size_t i = 0; i < spec_->documents.size(); ++i) {
    if (spec_->documents[i].id == id) return static_cast<int>(i);
    ids.push_back(spec_->documents[i].id);
  }
  return ErrorAt(At(n), "unknown document '" + id + "'",
                 ids.empty() ? std::string("a document defined under `documents:` (there are none)")
                             : "one of the suite's documents: " + Join(ids));
}

Status SuiteParser::ParseFamilySettings(const MapFields& m, FamilySpec* f) {
  Family& fam = f->family;
  const std::string what = "family '" + fam.name + "'";
  fam.title = fam.name;
  if (auto v = m.Get("title")) {
    BF_ASSIGN_OR_RETURN(fam.title, ReadString(*v, "a title (text)"));
  }
  if (auto v = m.Get("metric")) {
    BF_ASSIGN_OR_RETURN(std::string metric, ReadString(*v, "defect_rate or ungroundedness"));
    if (metric == "defect_rate") {
      fam.metric = FamilyMetric::kDefectRate;
    } else if (metric == "ungroundedness") {
      fam.metric = FamilyMetric::kUngroundedness;
    } else {
      return Wrong(*v, "defect_rate or ungroundedness");
    }
  }
  if (auto v = m.Get("threshold")) {
    if (fam.metric != FamilyMetric::kDefectRate) {
      return ErrorAt(At(*v), "a threshold on " + what + ", whose metric is ungroundedness",
                     "threshold only with metric: defect_rate");
    }
    BF_ASSIGN_OR_RETURN(int64_t t, ReadInt(*v, 0, 7));
    fam.threshold = static_cast<int>(t);
  }
  if (fam.metric == FamilyMetric::kUngroundedness) fam.threshold = 0;
  if (auto v = m.Get("turns")) {
    BF_ASSIGN_OR_RETURN(std::string turns, ReadString(*v, "single or multi"));
    if (turns == "single") {
      fam.mode = TurnMode::kSingle;
    } else if (turns == "multi") {
      fam.mode = TurnMode::kMulti;
    } else {
      return Wrong(*v, "single or multi");
    }
  }
  if (auto v = m.Get("max_turns")) {
    if (fam.mode != TurnMode::kMulti) {
      return ErrorAt(At(*v), "max_turns on " + what + ", which is single-turn",
                     "max_turns only with turns: multi");
    }
    BF_ASSIGN_OR_RETURN(int64_t t, ReadInt(*v, 1, 50));
    fam.max_turns = static_cast<int>(t);
  }
  if (fam.mode == TurnMode::kSingle) fam.max_turns = 1;

  std::vector<std::string> rubric_ids(std::begin(kSeverityRubrics), std::end(kSeverityRubrics));
  rubric_ids.push_back(kUngroundednessRubric);
  rubric_ids.push_back(kRefusalRubric);
  const std::string rubric_expected = "a rubric id (" + Join(rubric_ids) + ") or \"category\"";
  auto rubric_node = m.Get("rubric");
  if (!rubric_node) return Missing(m, what, "rubric", rubric_expected);
  BF_ASSIGN_OR_RETURN(fam.rubric, ReadString(*rubric_node, rubric_expected));
  const bool known = IsSeverityRubric(fam.rubric) || fam.rubric == kUngroundednessRubric ||
                     fam.rubric == kRefusalRubric || fam.rubric == kCategoryRubric;
  if (!known) return Wrong(*rubric_node, rubric_expected);
  if (fam.rubric == kRefusalRubric && (fam.threshold < 1 || fam.threshold > 2)) {
    return ErrorAt(
        At(*rubric_node),
        "threshold " + std::to_string(fam.threshold) + " with rubric 'refusal' on " + what,
        "threshold 1 (partial or full refusal) or 2 (full refusal only): the refusal "
        "scale is 0..2");
  }
  if (fam.metric == FamilyMetric::kUngroundedness && fam.rubric != kUngroundednessRubric) {
    return ErrorAt(At(*rubric_node),
                   "rubric '" + fam.rubric + "' on " + what + ", whose metric is ungroundedness",
                   "rubric: ungroundedness (its 0..4 scale is what the metric averages)");
  }
  if (fam.metric == FamilyMetric::kDefectRate && fam.rubric == kUngroundednessRubric) {
    return ErrorAt(At(*rubric_node),
                   "rubric 'ungroundedness' on " + what + ", whose metric is defect_rate",
                   "metric: ungroundedness, or a harm-severity rubric");
  }

  if (auto v = m.Get("categories")) {
    if (!v->IsSequence() || v->size() == 0) return Wrong(*v, "a non-empty list of categories");
    for (const auto& c : *v) {
      if (!c.IsScalar() || c.Scalar().empty()) return Wrong(c, "a category name");
      if (std::find(fam.categories.begin(), fam.categories.end(), c.Scalar()) !=
          fam.categories.end()) {
        return ErrorAt(At(c), "category '" + c.Scalar() + "' listed twice", "unique categories");
      }
      if (fam.rubric == kCategoryRubric && !IsSeverityRubric(c.Scalar())) {
        return ErrorAt(At(c), "category '" + c.Scalar() + "', which is not a rubric id",
                       "with rubric: category, every category names a harm-severity rubric (" +
                           Join(std::vector<std::string>(std::begin(kSeverityRubrics),
                                                         std::end(kSeverityRubrics))) +
                           ")");
      }
      fam.categories.push_back(c.Scalar());
    }
  }
  return Status::OK();
}

Status SuiteParser::ParseTemplates(const YAML::Node& n, FamilySpec* f) {
  const std::string what = "family '" + f->family.name + "'";
  if (!n.IsMap() || n.size() == 0) {
    return Wrong(n, "a non-empty map of template name to template (system, user, goal, persona)");
  }
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (!it->first.IsScalar() || !IsName(it->first.Scalar(), true)) {
      return Wrong(it->first, "a template name made of letters, digits, '_' and '-'");
    }
    TemplateSpec t;
    t.name = it->first.Scalar();
    t.where = At(it->first);
    for (const auto& other : f->templates) {
      if (other.name == t.name) {
        return ErrorAt(
            t.where,
            "duplicate template '" + t.name + "' (first at " + other.where.ToString() + ")",
            "unique template names in " + what);
      }
    }
    const std::string twhat = "template '" + t.name + "'";
    BF_ASSIGN_OR_RETURN(MapFields m,
                        ReadMap(it->second, twhat, {"system", "user", "goal", "persona"}));
    for (const auto& [key, value] : m.entries) {
      BF_ASSIGN_OR_RETURN(std::string text, ReadString(value, "text for " + twhat + " " + key));
      BF_ASSIGN_OR_RETURN(TemplateText parsed, TemplateText::Parse(text, At(value)));
      if (key == "system") t.system = std::move(parsed);
      if (key == "user") t.user = std::move(parsed);
      if (key == "goal") t.goal = std::move(parsed);
      if (key == "persona") t.persona = std::move(parsed);
    }
    if (f->family.mode == TurnMode::kSingle && t.user.empty()) {
      return Missing(m, twhat, "user",
                     "the user message (single-turn families send `user` as the only turn)");
    }
    if (f->family.mode == TurnMode::kMulti && t.goal.empty()) {
      return Missing(m, twhat, "goal",
                     "what the simulated user is after (multi-turn families need a `goal`)");
    }
    f->templates.push_back(std::move(t));
  }
  return Status::OK();
}

Result<int> SuiteParser::FindTemplate(const MapFields& m, const FamilySpec& f,
                                      const std::string& what) const {
  std::vector<std::string> names;
  for (const auto& t : f.templates) names.push_back(t.name);
  auto v = m.Get("template");
  if (!v) {
    if (f.templates.size() == 1) return 0;
    return Missing(m, what, "template",
                   "a template name (one of: " + Join(names) +
                       "; it may be left out only when the family has one template)");
  }
  BF_ASSIGN_OR_RETURN(std::string name, ReadString(*v, "a template name"));
  for (size_t i = 0; i < f.templates.size(); ++i) {
    if (f.templates[i].name == name) return static_cast<int>(i);
  }
  return ErrorAt(At(*v), "unknown template '" + name + "'",
                 "one of the templates of family '" + f.family.name + "': " + Join(names));
}

Result<std::vector<std::pair<std::string, YAML::Node>>> SuiteParser::ReadParams(
    const YAML::Node& n) const {
  if (!n.IsMap()) return Wrong(n, "a map of parameter name to value");
  std::vector<std::pair<std::string, YAML::Node>> out;
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (!it->first.IsScalar() || !IsParamName(it->first.Scalar())) {
      return Wrong(it->first, "a parameter name made of letters, digits and '_'");
    }
    const std::string& name = it->first.Scalar();
    if (IsReserved(name)) {
      return ErrorAt(
          At(it->first), "parameter name '" + name + "', which is reserved",
          "a name other than " +
              Join(std::vector<std::string>(std::begin(kReservedNames), std::end(kReservedNames))) +
              " (set category and document with their own keys)");
    }
    for (const auto& [k, v] : out) {
      if (k == name) {
        return ErrorAt(At(it->first), "duplicate parameter '" + name + "'", "unique names");
      }
    }
    out.emplace_back(name, it->second);
  }
  return out;
}

Status SuiteParser::CheckPlaceholders(const TemplateSpec& t, const std::set<std::string>& names,
                                      const std::string& source) const {
  const std::pair<const char*, const TemplateText*> fields[] = {
      {"system", &t.system}, {"user", &t.user}, {"goal", &t.goal}, {"persona", &t.persona}};
  for (const auto& [field, text] : fields) {
    for (const auto& name : text->placeholders()) {
      if (names.count(name) != 0) continue;
      return ErrorAt(text->where(),
                     "{{" + name + "}} in template '" + t.name + "' (field '" + field +
                         "') has no value for " + source,
                     "a parameter '" + name + "' there, or one of the names it binds: " +
                         Join(std::vector<std::string>(names.begin(), names.end())));
    }
  }
  return Status::OK();
}

Status SuiteParser::ParseItem(const YAML::Node& n, FamilySpec* f) {
  BF_ASSIGN_OR_RETURN(MapFields m, ReadMap(n, "an item of family '" + f->family.name + "'",
                                           {"id", "template", "category", "document", "params"}));
  ExplicitItemSpec item;
  item.where = At(n);
  const std::string what = "the item at " + item.where.ToString();
  BF_ASSIGN_OR_RETURN(item.template_index, FindTemplate(m, *f, what));
  if (auto v = m.Get("id")) {
    BF_ASSIGN_OR_RETURN(item.id, ReadString(*v, "an item id (text)"));
    if (item.id.empty()) return Wrong(*v, "a non-empty item id");
    item.id_where = At(*v);
  }
  auto category = m.Get("category");
  if (!category) return Missing(m, what, "category", "the item's category");
  BF_ASSIGN_OR_RETURN(item.category, ReadString(*category, "a category name"));
  BF_RETURN_IF_ERROR(CheckCategory(*f, item.category, At(*category)));
  std::set<std::string> names = {"family", "category"};
  if (auto v = m.Get("document")) {
    BF_ASSIGN_OR_RETURN(item.document, FindDocument(*v));
    names.insert({"document", "document_id"});
  }
  if (auto v = m.Get("params")) {
    BF_ASSIGN_OR_RETURN(auto params, ReadParams(*v));
    for (auto& [name, value] : params) {
      if (!value.IsScalar()) {
        return Wrong(value, "a text value for parameter '" + name + "' (write \"\" for empty)");
      }
      item.params.emplace_back(name, value.Scalar());
      names.insert(name);
    }
  }
  BF_RETURN_IF_ERROR(CheckPlaceholders(f->templates[item.template_index], names, what));
  f->items.push_back(std::move(item));
  return Status::OK();
}

Status SuiteParser::ParseGrid(const YAML::Node& n, size_t index, FamilySpec* f) {
  BF_ASSIGN_OR_RETURN(MapFields m,
                      ReadMap(n, "a grid of family '" + f->family.name + "'",
                              {"template", "category", "document", "params", "sample"}));
  GridSpec g;
  g.where = At(n);
  const std::string what = "the grid at " + g.where.ToString();
  BF_ASSIGN_OR_RETURN(g.template_index, FindTemplate(m, *f, what));
  auto category = m.Get("category");
  if (!category) return Missing(m, what, "category", "a category or a list of categories");
  BF_ASSIGN_OR_RETURN(g.categories, ReadStringOrList(*category, "categories"));
  for (size_t i = 0; i < g.categories.size(); ++i) {
    Location where = category->IsSequence() ? At((*category)[i]) : At(*category);
    BF_RETURN_IF_ERROR(CheckCategory(*f, g.categories[i], where));
  }
  g.radices.push_back(static_cast<int64_t>(g.categories.size()));
  std::set<std::string> names = {"family", "category"};
  if (auto v = m.Get("document")) {
    if (v->IsSequence()) {
      if (v->size() == 0) return Wrong(*v, "a document id or a non-empty list of them");
      for (const auto& d : *v) {
        BF_ASSIGN_OR_RETURN(int doc, FindDocument(d));
        g.documents.push_back(doc);
      }
    } else {
      BF_ASSIGN_OR_RETURN(int doc, FindDocument(*v));
      g.documents.push_back(doc);
    }
    g.radices.push_back(static_cast<int64_t>(g.documents.size()));
    names.insert({"document", "document_id"});
  }
  if (auto v = m.Get("params")) {
    BF_ASSIGN_OR_RETURN(auto params, ReadParams(*v));
    for (auto& [name, value] : params) {
      ParamSpec p;
      p.name = name;
      p.where = At(value);
      BF_ASSIGN_OR_RETURN(p.values, ReadStringOrList(value, "values for parameter '" + name + "'"));
      g.radices.push_back(static_cast<int64_t>(p.values.size()));
      names.insert(name);
      g.params.push_back(std::move(p));
    }
  }
  auto combinations = CheckedProduct(g.radices, kMaxItems);
  if (!combinations) {
    return ErrorAt(g.where, "a grid with more than 2^62 combinations",
                   "fewer values per axis (or a `sample:`)");
  }
  g.combinations = *combinations;
  if (auto v = m.Get("sample")) {
    BF_ASSIGN_OR_RETURN(g.sample, ReadInt(*v, 1, kMaxItems));
    if (g.sample > g.combinations) {
      return ErrorAt(At(*v),
                     "sample " + std::to_string(g.sample) + " from a grid of only " +
                         std::to_string(g.combinations) + " combinations",
                     "a sample of at most " + std::to_string(g.combinations) +
                         " (sampling never repeats a combination)");
    }
    // The permutation depends on the suite's seed, the family and the grid's position, so editing
    // one grid never reshuffles another.
    std::string key = KeyBuilder()
                          .Add("grid-sample")
                          .Add(static_cast<int64_t>(spec_->sample_seed))
                          .Add(f->family.name)
                          .Add(static_cast<int64_t>(index))
                          .Hex();
    g.permutation = IndexPermutation(static_cast<uint64_t>(g.combinations),
                                     std::stoull(key.substr(0, 16), nullptr, 16));
  }
  BF_RETURN_IF_ERROR(CheckPlaceholders(f->templates[g.template_index], names, what));
  f->grids.push_back(std::move(g));
  return Status::OK();
}

Status SuiteParser::ParseImport(const YAML::Node& n, FamilySpec* f) {
  BF_ASSIGN_OR_RETURN(MapFields m,
                      ReadMap(n, "an import of family '" + f->family.name + "'",
                              {"file", "format", "template", "columns", "category", "limit"}));
  ImportSpec imp;
  imp.where = At(n);
  const std::string what = "the import at " + imp.where.ToString();
  auto file = m.Get("file");
  if (!file) return Missing(m, what, "file", "a .csv or .jsonl path relative to the suite file");
  BF_ASSIGN_OR_RETURN(imp.file, ReadString(*file, "a file path"));
  if (imp.file.empty()) return Wrong(*file, "a file path");
  if (imp.file.rfind("${", 0) == 0) {
    // ${NAME}/rest: a dataset folder named by the environment, for suites (built-in ones
    // included) that read public datasets kept outside the repository.
    const size_t close = imp.file.find('}');
    const std::string name = close == std::string::npos ? "" : imp.file.substr(2, close - 2);
    const bool valid_name = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    });
    if (!valid_name || close + 1 >= imp.file.size() || imp.file[close + 1] != '/') {
      return Wrong(*file, "${NAME}/path with NAME in [A-Z0-9_]");
    }
    const std::optional<std::string> dir = env_->GetVar(name);
    if (!dir.has_value() || dir->empty()) {
      return ErrorAt(
          At(*file),
          "import file " + imp.file + " but the environment variable " + name + " is not set",
          name +
              " set to the folder that holds the dataset (for the shared datasets: "
              "export " +
              name + "=../shared/data)");
    }
    imp.path = *dir + imp.file.substr(close + 1);
  } else if (imp.file[0] == '/') {
    imp.path = imp.file;
  } else if (spec_->base_dir.empty() || spec_->base_dir == ".") {
    imp.path = imp.file;
  } else if (spec_->base_dir.back() == '/') {
    imp.path = spec_->base_dir + imp.file;
  } else {
    imp.path = spec_->base_dir + "/" + imp.file;
  }
  if (auto v = m.Get("format")) {
    BF_ASSIGN_OR_RETURN(std::string format, ReadString(*v, "csv or jsonl"));
    if (format == "csv") {
      imp.format = ImportFormat::kCsv;
    } else if (format == "jsonl") {
      imp.format = ImportFormat::kJsonl;
    } else {
      return Wrong(*v, "csv or jsonl");
    }
  } else if (HasSuffix(imp.file, ".csv")) {
    imp.format = ImportFormat::kCsv;
  } else if (HasSuffix(imp.file, ".jsonl") || HasSuffix(imp.file, ".ndjson")) {
    imp.format = ImportFormat::kJsonl;
  } else {
    return ErrorAt(At(*file), "cannot tell the format of '" + imp.file + "' from its name",
                   "a .csv or .jsonl file, or `format: csv|jsonl`");
  }
  BF_ASSIGN_OR_RETURN(imp.template_index, FindTemplate(m, *f, what));

  std::set<std::string> names = {"family", "category"};
  auto columns = m.Get("columns");
  if (!columns) {
    return Missing(m, what, "columns",
                   "a map of item field or parameter name to column name (or JSON key)");
  }
  if (!columns->IsMap() || columns->size() == 0) {
    return Wrong(*columns, "a non-empty map of item field or parameter name to column name");
  }
  for (auto it = columns->begin(); it != columns->end(); ++it) {
    ColumnSpec c;
    c.where = At(it->second);
    if (!it->first.IsScalar()) return Wrong(it->first, "a field or parameter name");
    c.param = it->first.Scalar();
    if (c.param == "id") {
      c.target = ImportTarget::kId;
    } else if (c.param == "category") {
      c.target = ImportTarget::kCategory;
    } else if (c.param == "document") {
      c.target = ImportTarget::kDocument;
      names.insert({"document", "document_id"});
    } else if (c.param == "document_text") {
      c.target = ImportTarget::kDocumentText;
      names.insert("document");
    } else if (!IsParamName(c.param) || IsReserved(c.param)) {
      return ErrorAt(At(it->first), "column target '" + c.param + "'",
                     "id, category, document, document_text, or a parameter name made of "
                     "letters, digits and '_'");
    } else {
      names.insert(c.param);
    }
    for (const auto& other : imp.columns) {
      if (other.param == c.param) {
        return ErrorAt(At(it->first), "'" + c.param + "' mapped twice",
                       "each field or parameter mapped once");
      }
    }
    BF_ASSIGN_OR_RETURN(c.source, ReadString(it->second, "a column name (or JSON key)"));
    if (c.source.empty()) return Wrong(it->second, "a non-empty column name (or JSON key)");
    imp.columns.push_back(std::move(c));
  }
  if (imp.maps(ImportTarget::kDocument) && imp.maps(ImportTarget::kDocumentText)) {
    return ErrorAt(At(*columns), "both 'document' and 'document_text' mapped",
                   "one of them: document (a document id) or document_text (the text itself)");
  }
  if (auto v = m.Get("category")) {
    BF_ASSIGN_OR_RETURN(imp.default_category, ReadString(*v, "a category name"));
    if (imp.default_category.empty()) return Wrong(*v, "a non-empty category name");
    BF_RETURN_IF_ERROR(CheckCategory(*f, imp.default_category, At(*v)));
  } else if (!imp.maps(ImportTarget::kCategory)) {
    return Missing(m, what, "category",
                   "a `category:` for its items, or a `category` entry under `columns:`");
  }
  if (auto v = m.Get("limit")) {
    BF_ASSIGN_OR_RETURN(imp.limit, ReadInt(*v, 1, kMaxItems));
  }
  BF_RETURN_IF_ERROR(CheckPlaceholders(f->templates[imp.template_index], names, what));
  f->imports.push_back(std::move(imp));
  return Status::OK();
}

Status SuiteParser::ParseFamily(const YAML::Node& n, std::map<std::string, Location>* names) {
  BF_ASSIGN_OR_RETURN(
      MapFields m, ReadMap(n, "a family",
                           {"name", "title", "metric", "threshold", "turns", "max_turns", "rubric",
                            "categories", "templates", "items", "grids", "import"}));
  FamilySpec f;
  f.where = At(n);
  auto name = m.Get("name");
  if (!name) {
    return Missing(m, "the family at " + f.where.ToString(), "name",
                   "a family name made of a-z, 0-9 and '_'");
  }
  BF_ASSIGN_OR_RETURN(f.family.name, ReadString(*name, "a family name"));
  if (!IsName(f.family.name, false)) return Wrong(*name, "a family name made of a-z, 0-9 and '_'");
  if (auto it = names->find(f.family.name); it != names->end()) {
    return ErrorAt(
        At(*name),
        "duplicate family name '" + f.family.name + "' (first at " + it->second.ToString() + ")",
        "unique family names");
  }
  (*names)[f.family.name] = At(*name);
  BF_RETURN_IF_ERROR(ParseFamilySettings(m, &f));

  const std::string what = "family '" + f.family.name + "'";
  auto templates = m.Get("templates");
  if (!templates) {
    return Missing(m, what, "templates", "a map of template name to template (system, user, ...)");
  }
  BF_RETURN_IF_ERROR(ParseTemplates(*templates, &f));
  auto read_list = [&](const char* key, auto parse) -> Status {
    auto v = m.Get(key);
    if (!v) return Status::OK();
    if (!v->IsSequence()) return Wrong(*v, std::string("a list under '") + key + "'");
    for (size_t i = 0; i < v->size(); ++i) BF_RETURN_IF_ERROR(parse((*v)[i], i));
    return Status::OK();
  };
  BF_RETURN_IF_ERROR(
      read_list("items", [&](const YAML::Node& x, size_t) { return ParseItem(x, &f); }));
  BF_RETURN_IF_ERROR(
      read_list("grids", [&](const YAML::Node& x, size_t i) { return ParseGrid(x, i, &f); }));
  BF_RETURN_IF_ERROR(
      read_list("import", [&](const YAML::Node& x, size_t) { return ParseImport(x, &f); }));
  if (f.items.empty() && f.grids.empty() && f.imports.empty()) {
    return ErrorAt(f.where, what + " has no items", "at least one of items, grids or import");
  }
  spec_->families.push_back(std::move(f));
  return Status::OK();
}

Status SuiteParser::CountImports() {
  for (FamilySpec& f : spec_->families) {
    for (ImportSpec& imp : f.imports) {
      BF_ASSIGN_OR_RETURN(auto rows, ImportRows::Open(spec_->documents, f, imp));
      ItemBinding binding;
      Location where;
      while (imp.limit < 0 || imp.rows < imp.limit) {
        BF_ASSIGN_OR_RETURN(bool got, rows->Next(&binding, &where));
        if (!got) break;
        ++imp.rows;
        if (!binding.id.empty()) {
          auto [it, inserted] = ids_.emplace(binding.id, binding.id_where);
          if (!inserted) {
            return ErrorAt(
                binding.id_where,
                "duplicate item id '" + binding.id + "' (first at " + it->second.ToString() + ")",
                "ids unique within the suite");
          }
        }
      }
      BF_ASSIGN_OR_RETURN(imp.sha256, rows->FinishAndHash());
    }
  }
  return Status::OK();
}

bool SuiteParser::CollidesWithGenerated(const std::string& id, std::string* other) const {
  size_t a = id.find('/');
  if (a == std::string::npos) return false;
  size_t b = id.find('/', a + 1);
  if (b == std::string::npos || id.find('/', b + 1) != std::string::npos) return false;
  std::string family = id.substr(0, a);
  std::string tmpl = id.substr(a + 1, b - a - 1);
  std::string digits = id.substr(b + 1);
  if (digits.empty() || digits.size() > 18 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  int64_t n = std::stoll(digits);
  if (GeneratedItemId(family, tmpl, n) != id) return false;
  for (const FamilySpec& f : spec_->families) {
    if (f.family.name != family || n >= f.item_count) continue;
    auto named = [&](int index) { return f.templates[index].name == tmpl; };
    if (n < static_cast<int64_t>(f.items.size())) {
      const auto& item = f.items[n];
      *other = "the item at " + item.where.ToString();
      return item.id.empty() && named(item.template_index);
    }
    n -= static_cast<int64_t>(f.items.size());
    for (const auto& g : f.grids) {
      if (n < g.count()) {
        *other = "an item of the grid at " + g.where.ToString();
        return named(g.template_index);
      }
      n -= g.count();
    }
    for (const auto& imp : f.imports) {
      if (n < imp.rows) {
        *other = "a row of the import at " + imp.where.ToString();
        return !imp.maps(ImportTarget::kId) && named(imp.template_index);
      }
      n -= imp.rows;
    }
  }
  return false;
}

Status SuiteParser::CheckIds() {
  for (const auto& [id, where] : ids_) {
    std::string other;
    if (CollidesWithGenerated(id, &other)) {
      return ErrorAt(where, "item id '" + id + "', which is also the id generated for " + other,
                     "an explicit id that does not look like family/template/NNNN");
    }
  }
  return Status::OK();
}

Result<std::shared_ptr<const SuiteSpec>> SuiteParser::Parse(const std::string& text) {
  text_ = &text;
  YAML::Node root = YAML::Load(text);
  BF_ASSIGN_OR_RETURN(
      MapFields m,
      ReadMap(root, "the suite", {"name", "description", "sample_seed", "documents", "families"}));
  auto name = m.Get("name");
  if (!name) return Missing(m, "the suite", "name", "a suite name");
  BF_ASSIGN_OR_RETURN(spec_->name, ReadString(*name, "a suite name"));
  if (spec_->name.empty()) return Wrong(*name, "a non-empty suite name");
  if (auto v = m.Get("description")) {
    BF_ASSIGN_OR_RETURN(spec_->description, ReadString(*v, "a description (text)"));
  }
  if (auto v = m.Get("sample_seed")) {
    BF_ASSIGN_OR_RETURN(int64_t seed, ReadInt(*v, 0, INT64_MAX));
    spec_->sample_seed = static_cast<uint64_t>(seed);
  }
  if (auto v = m.Get("documents")) BF_RETURN_IF_ERROR(ParseDocuments(*v));
  auto families = m.Get("families");
  if (!families) return Missing(m, "the suite", "families", "a list of families");
  if (!families->IsSequence() || families->size() == 0) {
    return Wrong(*families, "a non-empty list of families");
  }
  std::map<std::string, Location> family_names;
  for (const auto& f : *families) BF_RETURN_IF_ERROR(ParseFamily(f, &family_names));

  // Explicit ids from items: unique across the suite.
  for (const FamilySpec& f : spec_->families) {
    for (const auto& item : f.items) {
      if (item.id.empty()) continue;
      auto [it, inserted] = ids_.emplace(item.id, item.id_where);
      if (!inserted) {
        return ErrorAt(
            item.id_where,
            "duplicate item id '" + item.id + "' (first at " + it->second.ToString() + ")",
            "ids unique within the suite");
      }
    }
  }
  BF_RETURN_IF_ERROR(CountImports());

  int64_t total = 0;
  for (FamilySpec& f : spec_->families) {
    int64_t count = static_cast<int64_t>(f.items.size());
    for (const auto& g : f.grids) {
      if (__builtin_add_overflow(count, g.count(), &count)) count = kMaxItems + 1;
    }
    for (const auto& imp : f.imports) count += imp.rows;
    if (count > kMaxItems || __builtin_add_overflow(total, count, &total) || total > kMaxItems) {
      return ErrorAt(f.where, "more than 2^62 items", "a smaller suite");
    }
    f.item_count = count;
    spec_->public_families.push_back(f.family);
  }
  spec_->item_count = total;
  BF_RETURN_IF_ERROR(CheckIds());

  KeyBuilder hash;
  hash.Add("breakfix-suite-v1").Add(text);
  for (const FamilySpec& f : spec_->families) {
    for (const auto& imp : f.imports) hash.Add(imp.file).Add(imp.sha256);
  }
  spec_->content_hash = hash.Hex();
  return std::shared_ptr<const SuiteSpec>(spec_);
}

}  // namespace

Result<std::shared_ptr<const SuiteSpec>> ParseSuiteSpec(const std::string& yaml_text,
                                                        const std::string& file_name,
                                                        const std::string& base_dir, Env* env) {
  SuiteParser parser(file_name, base_dir, env == nullptr ? Env::Default() : env);
  try {
    return parser.Parse(yaml_text);
  } catch (const YAML::Exception& e) {
    return ErrorAt(MarkToLocation(e.mark, yaml_text, file_name), "YAML syntax error: " + e.msg,
                   "well-formed YAML");
  } catch (const std::exception& e) {
    return Status::Internal(file_name + ": unexpected error while reading the suite: " + e.what());
  }
}

}  // namespace breakfix::dataset
