#pragma once
// Every case of every committed fixture under fixtures/, named for gtest by producer, version,
// file and case (fixtures/peft/peft-0.19.1/oft_hqq_float16.h5 :: <case> ->
// peft_peft_0_19_1__oft_hqq_float16__<case>).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "fixtures/format/fixture_case.hpp"
#include "test_support.hpp"

namespace qoracle::testing {

struct CaseRef {
  std::string file, name;
};
inline void PrintTo(const CaseRef& r, std::ostream* os) { *os << r.file << " :: " << r.name; }

inline std::vector<CaseRef> committed_cases() {
  std::vector<CaseRef> refs;
  std::vector<std::string> files;
  namespace fs = std::filesystem;
  for (auto it = fs::recursive_directory_iterator(source_path("fixtures")); it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_directory() && it->path().filename().string().starts_with(".")) it.disable_recursion_pending();  // .venv
    else if (it->is_regular_file() && it->path().extension() == ".h5") files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files)
    for (const auto& n : list_cases(f)) refs.push_back({f, n});
  return refs;
}

// The cases that get a ctest each: all but those of the older PEFT releases' folders, whose files
// cli.check_committed_fixtures checks whole, every case and output, in one process (one test per
// case there would double the suite's time for cases the newest release repeats).
inline std::vector<CaseRef> committed_cases_one_test_each() {
  std::vector<CaseRef> refs = committed_cases();
  std::erase_if(refs, [](const CaseRef& r) {
    const std::string rel = std::filesystem::relative(r.file, source_path("fixtures/peft")).string();
    return rel.starts_with("peft-") && !rel.starts_with("peft-0.21.2");
  });
  return refs;
}

inline std::string sanitized(const CaseRef& r) {
  // The folder says which producer and version (fixtures/peft/peft-0.19.1/...), the stem the dtype.
  const auto rel = std::filesystem::relative(r.file, source_path("fixtures"));
  std::string s = rel.parent_path().string() + "__" + rel.stem().string() + "__" + r.name;
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

}  // namespace qoracle::testing
