#include "dataset/import_rows.h"

namespace breakfix::dataset {
namespace {

std::string TargetName(const ColumnSpec& column) {
  switch (column.target) {
    case ImportTarget::kId:
      return "id";
    case ImportTarget::kCategory:
      return "category";
    case ImportTarget::kDocument:
      return "document";
    case ImportTarget::kDocumentText:
      return "document_text";
    case ImportTarget::kParam:
      return column.param;
  }
  return column.param;
}

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n.empty() ? "\"\"" : n;
  }
  return out;
}

}  // namespace

ImportRows::ImportRows(const std::vector<DocumentSpec>& documents, const FamilySpec& family,
                       const ImportSpec& import, std::unique_ptr<ByteStream> in)
    : documents_(documents), family_(family), import_(import), in_(std::move(in)) {}

Result<std::unique_ptr<ImportRows>> ImportRows::Open(const std::vector<DocumentSpec>& documents,
                                                     const FamilySpec& family,
                                                     const ImportSpec& import) {
  auto opened = ByteStream::OpenFile(import.path);
  if (!opened.ok()) {
    return ErrorAt(
        import.where,
        "cannot read import file '" + import.file + "' (" + opened.status().message() + ")",
        "a readable .csv or .jsonl file, relative to the suite file");
  }
  std::unique_ptr<ImportRows> rows(
      new ImportRows(documents, family, import, std::move(opened).value()));
  if (import.format == ImportFormat::kJsonl) {
    rows->jsonl_ = std::make_unique<JsonlReader>(rows->in_.get());
    for (const auto& c : import.columns) rows->keys_.push_back(c.source);
    return rows;
  }
  rows->csv_ = std::make_unique<CsvReader>(rows->in_.get());
  BF_RETURN_IF_ERROR(rows->csv_->ReadHeader());
  const auto& header = rows->csv_->header();
  for (const auto& c : import.columns) {
    size_t found = header.size();
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] != c.source) continue;
      if (found != header.size()) {
        return ErrorAt({import.path, 1, 1},
                       "the header names column '" + c.source + "' twice (mapped to '" +
                           TargetName(c) + "' at " + c.where.ToString() + ")",
                       "unique column names");
      }
      found = i;
    }
    if (found == header.size()) {
      return ErrorAt({import.path, 1, 1},
                     "no column '" + c.source + "' in the header (mapped to '" + TargetName(c) +
                         "' at " + c.where.ToString() + ")",
                     "one of the header's columns: " + Join(header));
    }
    rows->csv_index_.push_back(found);
  }
  return rows;
}

Status ImportRows::Apply(const ColumnSpec& column, const std::optional<std::string>& value,
                         const Location& where, ItemBinding* binding) {
  const std::string mapped =
      " (mapped to '" + TargetName(column) + "' at " + column.where.ToString() + ")";
  const char* kind = import_.format == ImportFormat::kCsv ? "column" : "key";
  if (!value.has_value()) {
    if (column.target == ImportTarget::kCategory && !import_.default_category.empty()) {
      binding->category = import_.default_category;
      return CheckCategory(family_, binding->category, where);
    }
    return ErrorAt(where, "no key '" + column.source + "' in this object" + mapped,
                   "every mapped key on every line");
  }
  auto require_value = [&](const std::string& what) -> Status {
    if (!value->empty()) return Status::OK();
    return ErrorAt(where,
                   std::string("an empty value in ") + kind + " '" + column.source + "'" + mapped,
                   what);
  };
  switch (column.target) {
    case ImportTarget::kId:
      BF_RETURN_IF_ERROR(require_value("a non-empty item id"));
      binding->id = *value;
      binding->id_where = where;
      return Status::OK();
    case ImportTarget::kCategory:
      if (value->empty() && !import_.default_category.empty()) {
        binding->category = import_.default_category;
      } else {
        BF_RETURN_IF_ERROR(
            require_value("a non-empty category (or a default `category:` on the "
                          "import)"));
        binding->category = *value;
      }
      return CheckCategory(family_, binding->category, where);
    case ImportTarget::kDocument: {
      BF_RETURN_IF_ERROR(require_value("a document id from the suite's `documents:`"));
      for (size_t i = 0; i < documents_.size(); ++i) {
        if (documents_[i].id == *value) {
          binding->document = static_cast<int>(i);
          return Status::OK();
        }
      }
      std::vector<std::string> ids;
      for (const auto& d : documents_) ids.push_back(d.id);
      return ErrorAt(where, "unknown document '" + *value + "'" + mapped,
                     ids.empty() ? std::string("a document defined under `documents:` (there are "
                                               "none)")
                                 : "one of the suite's documents: " + Join(ids));
    }
    case ImportTarget::kDocumentText:
      binding->has_inline_document = !value->empty();
      binding->inline_document = *value;
      return Status::OK();
    case ImportTarget::kParam:
      binding->params.emplace_back(column.param, *value);
      return Status::OK();
  }
  return Status::OK();
}

Result<bool> ImportRows::Next(ItemBinding* binding, Location* where) {
  *binding = ItemBinding();
  binding->category = import_.default_category;
  if (csv_ != nullptr) {
    BF_ASSIGN_OR_RETURN(bool got, csv_->Next(&fields_));
    if (!got) return false;
    *where = {import_.path, csv_->record_line(), 1};
    for (size_t k = 0; k < import_.columns.size(); ++k) {
      const CsvField& f = fields_[csv_index_[k]];
      BF_RETURN_IF_ERROR(
          Apply(import_.columns[k], f.value, {import_.path, f.line, f.column}, binding));
    }
  } else {
    BF_ASSIGN_OR_RETURN(bool got, jsonl_->Next(keys_, &values_));
    if (!got) return false;
    *where = {import_.path, jsonl_->line(), 1};
    for (size_t k = 0; k < import_.columns.size(); ++k) {
      BF_RETURN_IF_ERROR(Apply(import_.columns[k], values_[k], *where, binding));
    }
  }
  if (!import_.maps(ImportTarget::kCategory)) {
    BF_RETURN_IF_ERROR(CheckCategory(family_, binding->category, *where));
  }
  return true;
}

Result<std::string> ImportRows::FinishAndHash() {
  in_->Drain();
  BF_RETURN_IF_ERROR(in_->status());
  return in_->HexDigest();
}

}  // namespace breakfix::dataset
