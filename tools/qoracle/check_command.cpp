#include <algorithm>
#include <iostream>

#include "conformance/case_runner.hpp"
#include "conformance/optimized_check.hpp"
#include "fixtures/format/isolated_read.hpp"
#include "reference/error.hpp"
#include "tools/qoracle/commands.hpp"
#include "tools/qoracle/fixture_paths.hpp"
#include "tools/qoracle/report.hpp"

namespace qoracle::cli {


namespace {

CheckRow error_row(const std::string& file, const std::string& case_name, const std::string& message) {
  CheckRow row;
  row.file = file;
  row.case_name = case_name;
  row.status = CheckStatus::Error;
  row.error = message;
  return row;
}

}  // namespace

int check_command(const std::vector<std::string>& args) {
  std::vector<std::string> paths;
  bool json = false, optimized = true;
  std::string report = "reports/conformance.md";
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") json = true;
    else if (args[i] == "--no-report") report.clear();
    else if (args[i] == "--no-optimized") optimized = false;
    else if (args[i] == "--report" && i + 1 < args.size()) report = args[++i];
    else if (args[i].rfind("--", 0) == 0) throw Error("unknown option '" + args[i] + "'");
    else paths.push_back(args[i]);
  }
  if (paths.empty()) throw Error("expected at least one fixture file or folder");

  std::vector<CheckRow> rows;
  const auto files = fixture_files(paths);
  if (files.empty()) throw Error("no .h5 fixture files found under the given paths");
  // Decoded in a child process, while this one checks the file before: a file that crashes
  // HDF5 becomes an error row, not a crash.
  read_fixture_files_isolated(files, [&](FileRead&& read) {
    const std::string& file = read.file;
    for (const auto& note : read.notes) std::cerr << "note: " << note << "\n";
    if (!read.error.empty()) rows.push_back(error_row(file, "", read.error));
    for (const CaseRead& one : read.cases) {
      if (!one.fixture) {
        rows.push_back(error_row(file, one.name, one.error));
        continue;
      }
      try {
        const FixtureCase& c = *one.fixture;
        const auto case_rows = check_case(c);
        rows.insert(rows.end(), case_rows.begin(), case_rows.end());
        if (optimized) {  // the fused kernels on the same case (host emulation; the GPU where present)
          for (const auto& more : {check_case_optimized(c), check_case_optimized_merge(c), check_case_optimized_eetq_merge(c)})
            rows.insert(rows.end(), more.begin(), more.end());
        }
      } catch (const Error& e) {
        rows.push_back(error_row(file, one.name, e.what()));
      }
    }
  });

  if (json) print_json(std::cout, rows);
  else print_table(std::cout, rows);
  const Tally t = tally(rows);
  if (!report.empty()) {
    std::ofstream md = open_report(report);
    write_markdown_report(md, rows);
  }
  (json ? std::cerr : std::cout) << "qoracle check: " << t.passed << " passed, " << t.failed << " failed, "
                                 << t.errors << " errors" << (report.empty() ? "" : " (report: " + report + ")")
                                 << "\n";
  return (t.failed == 0 && t.errors == 0) ? 0 : 1;
}

}  // namespace qoracle::cli
