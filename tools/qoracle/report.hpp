#pragma once
// Turning check rows into what people and machines read: the terminal table, JSON, Markdown.
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include "conformance/case_runner.hpp"

namespace qoracle::cli {

void print_table(std::ostream& out, const std::vector<CheckRow>& rows);
void print_json(std::ostream& out, const std::vector<CheckRow>& rows);
void write_markdown_report(std::ostream& out, const std::vector<CheckRow>& rows);

// Opens a report for writing, creating its folder; throws Error naming the path if it cannot.
std::ofstream open_report(const std::string& path);

struct Tally {
  int passed = 0, failed = 0, errors = 0;
};
Tally tally(const std::vector<CheckRow>& rows);

}  // namespace qoracle::cli
