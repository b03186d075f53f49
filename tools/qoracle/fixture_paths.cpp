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
      // Hidden folders are skipped: fixtures/export/.venv (the exporter's venv) ships h5py's test files.
      for (auto it = fs::recursive_directory_iterator(p); it != fs::recursive_directory_iterator(); ++it) {
        if (it->is_directory() && it->path().filename().string().starts_with(".")) {
          it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file() && it->path().extension() == ".h5") found.push_back(it->path().string());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(p);  // a missing or unreadable file becomes an ERROR row
    }
  }
  return files;
}

}  // namespace qoracle::cli
