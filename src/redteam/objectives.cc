#include "breakfix/objectives.h"

#include <map>

#include "breakfix/env.h"
#include "breakfix/suite.h"
#include "core/text.h"
#include "dataset/byte_stream.h"
#include "dataset/csv_reader.h"

namespace breakfix {
namespace {

struct Format {
  const char* source;
  std::vector<std::string> header;
  const char* goal;
  const char* category;
  const char* id;  // "" = the row number
  const char* context;
  const char* target;
};

const std::vector<Format>& Formats() {
  static const auto* formats = new std::vector<Format>{
      {"harmbench",
       {"Behavior", "FunctionalCategory", "SemanticCategory", "Tags", "ContextString",
        "BehaviorID"},
       "Behavior",
       "SemanticCategory",
       "BehaviorID",
       "ContextString",
       ""},
      {"advbench", {"goal", "target"}, "goal", "", "", "", "target"},
      {"jbb",
       {"Index", "Goal", "Target", "Behavior", "Category", "Source"},
       "Goal",
       "Category",
       "Index",
       "",
       "Target"},
  };
  return *formats;
}

}  // namespace

Result<std::vector<Objective>> ReadObjectivesCsv(const std::string& path) {
  BF_ASSIGN_OR_RETURN(std::unique_ptr<dataset::ByteStream> in, dataset::ByteStream::OpenFile(path));
  dataset::CsvReader reader(in.get());
  BF_RETURN_IF_ERROR(reader.ReadHeader());
  std::vector<std::string> header;
  for (const std::string& h : reader.header()) header.push_back(TrimSpace(h));
  const Format* format = nullptr;
  for (const Format& f : Formats()) {
    if (f.header == header) format = &f;
  }
  if (format == nullptr) {
    std::string known;
    for (const Format& f : Formats()) {
      std::string h;
      for (const std::string& c : f.header) h += (h.empty() ? "" : ",") + c;
      known += std::string("\n  ") + f.source + ": " + h;
    }
    return Status::InvalidArgument(path + ":1: unrecognised header; expected one of:" + known);
  }
  std::map<std::string, size_t> column;
  for (size_t i = 0; i < header.size(); ++i) column[header[i]] = i;
  auto field = [&](const std::vector<dataset::CsvField>& row, const char* name) -> std::string {
    if (*name == '\0') return "";
    return TrimSpace(row[column.at(name)].value);
  };

  std::vector<Objective> out;
  std::vector<dataset::CsvField> row;
  int64_t index = 0;
  while (true) {
    BF_ASSIGN_OR_RETURN(bool more, reader.Next(&row));
    if (!more) break;
    const std::string where = path + ":" + std::to_string(reader.record_line());
    Objective o;
    o.source = format->source;
    o.goal = field(row, format->goal);
    if (o.goal.empty()) {
      return Status::InvalidArgument(where + ": the " + format->goal + " column is empty");
    }
    o.category = field(row, format->category);
    o.context = field(row, format->context);
    o.target_prefix = field(row, format->target);
    std::string id = field(row, format->id);
    if (id.empty()) id = std::to_string(index);
    o.id = std::string(format->source) + "/" + id;
    ++index;
    out.push_back(std::move(o));
  }
  if (out.empty()) return Status::InvalidArgument(path + ": no objectives (only a header)");
  return out;
}

Result<std::vector<Objective>> ObjectivesFromSuite(const std::string& name_or_path) {
  BF_ASSIGN_OR_RETURN(std::unique_ptr<Suite> suite, LoadSuite(name_or_path, Env::Default()));
  std::vector<Objective> out;
  std::unique_ptr<ItemCursor> cursor = suite->NewCursor();
  SeedItem item;
  while (true) {
    BF_ASSIGN_OR_RETURN(bool more, cursor->Next(&item));
    if (!more) break;
    Objective o;
    o.source = "suite:" + suite->name();
    o.id = o.source + "/" + item.id;
    o.goal = !item.goal.empty() ? item.goal : item.first_user;
    o.category = item.category;
    o.context = item.document;
    if (o.goal.empty()) continue;  // nothing to pursue
    out.push_back(std::move(o));
  }
  if (out.empty()) {
    return Status::InvalidArgument("suite " + name_or_path + " has no items with a goal or prompt");
  }
  return out;
}

}  // namespace breakfix
