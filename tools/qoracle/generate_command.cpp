#include <filesystem>
#include <iostream>
#include <map>

#include "conformance/case_table.hpp"
#include "reference/error.hpp"
#include "tools/qoracle/commands.hpp"

namespace qoracle::cli {

int generate_command(const std::vector<std::string>& args) {
  std::string out_dir;
  std::uint64_t seed_offset = 0;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--out" && i + 1 < args.size()) out_dir = args[++i];
    else if (args[i] == "--seed-offset" && i + 1 < args.size()) seed_offset = std::stoull(args[++i]);
    else throw Error("unknown or incomplete option '" + args[i] + "'");
  }
  if (out_dir.empty()) throw Error("--out DIR is required");
  std::filesystem::create_directories(out_dir);

  std::map<std::string, std::vector<FixtureCase>> by_kind;
  for (CaseSpec spec : standard_cases()) {
    spec.seed += seed_offset;
    by_kind[spec.layer_kind].push_back(make_reference_case(spec));
  }
  for (const auto& [kind, cases] : by_kind) {
    std::string file = kind;
    for (char& ch : file)
      if (ch == '/') ch = '_';
    const std::string path = (std::filesystem::path(out_dir) / (file + ".h5")).string();
    write_fixture_file(path, cases);
    std::cout << "wrote " << cases.size() << " case(s) to " << path << "\n";
  }
  return 0;
}

}  // namespace qoracle::cli
