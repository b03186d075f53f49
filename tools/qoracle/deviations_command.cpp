// qoracle deviations: where does PEFT's behaviour differ from the math, and by how much?
// Every PEFT-convention case is recomputed in the math convention; each expected output that no
// longer matches within its tolerance is a measured deviation.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>

#include "conformance/case_runner.hpp"
#include "fixtures/format/isolated_read.hpp"
#include "reference/error.hpp"
#include "tools/qoracle/commands.hpp"
#include "tools/qoracle/fixture_paths.hpp"
#include "tools/qoracle/report.hpp"

namespace qoracle::cli {

int deviations_command(const std::vector<std::string>& args) {
  std::vector<std::string> paths;
  std::string report = "reports/peft-deviations-measured.md";
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--no-report") report.clear();
    else if (args[i] == "--report" && i + 1 < args.size()) report = args[++i];
    else if (args[i].rfind("--", 0) == 0) throw Error("unknown option '" + args[i] + "'");
    else paths.push_back(args[i]);
  }
  if (paths.empty()) throw Error("expected at least one fixture file or folder");

  std::vector<CheckRow> deviations;
  int checked = 0;
  for (const auto& file : fixture_files(paths)) {
    const FileRead read = read_fixture_file_isolated(file);  // a file that crashes HDF5 is an error here
    if (!read.error.empty()) throw Error(read.error);
    for (const CaseRead& one : read.cases) {
      if (!one.fixture) throw Error(one.error);
      FixtureCase c = *one.fixture;
      if (c.convention != Convention::Peft) continue;
      c.convention = Convention::Math;
      for (auto& row : check_case(c)) {
        if (row.referee) continue;
        ++checked;
        row.convention = "math vs peft";
        if (row.status != CheckStatus::Pass) deviations.push_back(std::move(row));
      }
    }
  }
  // Largest first: the deviations that matter most lead the list.
  std::sort(deviations.begin(), deviations.end(), [](const CheckRow& a, const CheckRow& b) {
    return a.comparison.max_abs_error / std::max(a.comparison.expected_max_abs, 1e-300) >
           b.comparison.max_abs_error / std::max(b.comparison.expected_max_abs, 1e-300);
  });
  print_table(std::cout, deviations);
  std::cout << "qoracle deviations: " << deviations.size() << " of " << checked
            << " PEFT expectations differ from the math beyond their tolerance\n";
  if (!report.empty()) {
    std::ofstream md = open_report(report);
    md << "# PEFT deviations, measured\n\n"
       << "Written by `qoracle deviations fixtures/peft`. Every case exported from the real PEFT was recomputed "
          "by the reference in the **math** convention; these expected outputs of PEFT no longer match within "
          "their tolerance. Relative sizes are max|math − PEFT| / max|PEFT|. What each one is: "
          "[peft-deviations.md](peft-deviations.md).\n\n"
       << deviations.size() << " of " << checked << " expectations differ.\n\n"
       << "| case | file | output | max abs difference | relative |\n|---|---|---|---|---|\n";
    for (const auto& r : deviations) {
      const auto& c = r.comparison;
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.3e | %.3e", c.max_abs_error,
                    c.expected_max_abs > 0 ? c.max_abs_error / c.expected_max_abs : 0.0);
      md << "| `" << r.case_name << "` | " << std::filesystem::path(r.file).parent_path().filename().string() << "/"
         << std::filesystem::path(r.file).filename().string() << " | " << r.output << " | " << buf << " |\n";
    }
  }
  return 0;
}

}  // namespace qoracle::cli
