#pragma once
// The .h5 files named by the command line: files as given, folders searched recursively (sorted).
#include <string>
#include <vector>

namespace qoracle::cli {

std::vector<std::string> fixture_files(const std::vector<std::string>& paths);

}  // namespace qoracle::cli
