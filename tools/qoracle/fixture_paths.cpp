#include "tools/qoracle/fixture_paths.hpp"

#include <algorithm>
#include <filesystem>

namespace qoracle::cli {

namespace fs = std::filesystem;

std::vector<std::string> fixture_files(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> found;
      for (const auto& entry : fs::recursive_directory_iterator(p))
        if (entry.is_regular_file() && entry.path().extension() == ".h5") found.push_back(entry.path().string());
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(p);  // a missing or unreadable file becomes an ERROR row
    }
  }
  return files;
}

}  // namespace qoracle::cli
