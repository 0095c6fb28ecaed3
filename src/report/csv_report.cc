// annotations.csv: one row per unit of the run, streamed from the store, and the report files.
#include <string>

#include "breakfix/report.h"
#include "core/atomic_file.h"
#include "report/format.h"

namespace breakfix {

Status WriteAnnotationsCsv(Store* store, const RunReport& report, const std::string& path) {
  BF_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path));
  std::map<std::string, const FamilyInfo*> families;
  for (const FamilyInfo& f : report.families) families[f.name] = &f;
  file->Write(
      "run,target,family,category,item_id,conversation_key,conversation_status,stop_reason,"
      "assistant_turns,judge,rubric,outcome,scale,score,threshold,defect,turn_scores,attempts,"
      "reason\r\n");
  std::string line;
  BF_RETURN_IF_ERROR(store->ForEachResult(report.run.id, [&](const ResultRow& row) {
    const auto it = families.find(row.unit.family);
    const FamilyInfo* family = it == families.end() ? nullptr : it->second;
    line.clear();
    auto cell = [&line](const std::string& v) {
      if (!line.empty()) line += ',';
      line += CsvCell(v);
    };
    cell(report.run.name);
    cell(row.unit.target);
    cell(row.unit.family);
    cell(row.unit.category);
    cell(row.unit.item_id);
    cell(row.unit.conversation_key);
    cell(ConversationStatusName(row.conversation_status));
    cell(row.stop_reason);
    cell(std::to_string(row.assistant_turns));
    if (!row.annotated) {
      cell("");
      cell("");
      cell("pending");
      for (int i = 0; i < 7; ++i) cell("");
    } else {
      const Annotation& a = row.annotation;
      const bool scored = a.outcome == Outcome::kScored;
      cell(row.judge);
      cell(row.rubric);
      cell(OutcomeName(a.outcome));
      cell(ScaleName(a.scale));
      cell(scored ? std::to_string(a.score) : "");
      const bool is_mean = family != nullptr && family->is_mean;
      const int threshold = a.scale == Scale::kBinary ? 1 : (family ? family->threshold : 1);
      cell(is_mean ? "" : std::to_string(threshold));
      cell(!scored || is_mean ? "" : (a.score >= threshold ? "1" : "0"));
      std::string turns;
      for (const TurnScore& t : a.turns) {
        if (!turns.empty()) turns += ';';
        turns += std::to_string(t.turn) + ":" + std::to_string(t.score);
      }
      cell(turns);
      cell(std::to_string(a.attempts));
      cell(a.reason);
    }
    line += "\r\n";
    file->Write(line);
    return Status::OK();
  }));
  return file->Commit();
}

Result<std::vector<std::string>> WriteReportFiles(Store* store, const RunReport& report,
                                                  const std::string& dir, Env* env) {
  BF_RETURN_IF_ERROR(MakeDirs(dir));
  std::vector<std::string> written;
  const std::string md = dir + "/report.md";
  BF_RETURN_IF_ERROR(env->WriteFileAtomic(md, RenderMarkdown(report)));
  written.push_back(md);
  const std::string json = dir + "/report.json";
  BF_RETURN_IF_ERROR(env->WriteFileAtomic(json, RenderJson(report)));
  written.push_back(json);
  const std::string csv = dir + "/annotations.csv";
  BF_RETURN_IF_ERROR(WriteAnnotationsCsv(store, report, csv));
  written.push_back(csv);
  // The reproducibility manifest, as the store holds it (breakfix/manifest.h); runs made before
  // manifests existed have none, and get no manifest.json.
  BF_ASSIGN_OR_RETURN(RunManifestRecord manifest, store->GetRunManifest(report.run.id));
  if (manifest.state == RunManifestState::kRecorded) {
    const std::string path = dir + "/manifest.json";
    BF_RETURN_IF_ERROR(env->WriteFileAtomic(path, manifest.manifest_json));
    written.push_back(path);
  }
  return written;
}

}  // namespace breakfix
