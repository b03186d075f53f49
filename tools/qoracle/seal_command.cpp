// qoracle seal: rewrite fixture files into the checksummed form (fixtures/format/seal.hpp), or
// with --check only say which are not. Each file is handled in a child process, so a damaged
// file that crashes HDF5 is an error naming it.
#include <filesystem>
#include <iostream>

#include "fixtures/format/isolated_read.hpp"
#include "fixtures/format/seal.hpp"
#include "reference/error.hpp"
#include "tools/qoracle/commands.hpp"
#include "tools/qoracle/fixture_paths.hpp"

namespace qoracle::cli {

int seal_command(const std::vector<std::string>& args) {
  std::vector<std::string> paths;
  bool check = false;
  for (const auto& a : args) {
    if (a == "--check") check = true;
    else if (a.starts_with("--")) throw Error("unknown option '" + a + "'");
    else paths.push_back(a);
  }
  if (paths.empty()) throw Error("expected at least one file or folder: seal PATH... [--check]");
  int failed = 0, sealed = 0, unchanged = 0;
  for (const std::string& file : fixture_files(paths)) {
    std::vector<std::string> lines;  // what the child reports, one line each
    bool ok = true;
    const ChildOutcome out = run_isolated(
        [&](const SendFn& send) {
          try {
            if (check) {
              for (const auto& reason : unsealed_reasons(file)) send('x', reason);
              return;
            }
            const SealReport r = seal_file(file);
            send(r.changed ? 's' : 'u', std::to_string(r.datasets) + " datasets (" + std::to_string(r.data_bytes) +
                                            " bytes), " + std::to_string(r.attributes) + " attributes");
          } catch (const std::exception& e) {
            send('e', e.what());
          }
        },
        [&](ChildFrame&& f) {
          if (f.tag == 's') ++sealed, lines.push_back("sealed " + file + ": " + f.payload);
          else if (f.tag == 'u') ++unchanged, lines.push_back("already sealed " + file + ": " + f.payload);
          else ok = false, lines.push_back((f.tag == 'x' ? "not sealed " + file + ": " : "ERROR ") + f.payload);
        });
    if (!out.finished) {
      ok = false, lines.push_back("ERROR " + file + ": " + why_unread(out));
      std::error_code ignored;  // a child killed mid-way leaves its scratch copy (seal.cpp); the file is untouched
      std::filesystem::remove(file + ".sealing", ignored);
    }
    if (!ok) ++failed;
    if (check && ok) lines.push_back("sealed " + file);
    for (const auto& l : lines) std::cout << l << "\n";
  }
  if (check) std::cout << "qoracle seal --check: " << failed << " file(s) not sealed\n";
  else std::cout << "qoracle seal: " << sealed << " sealed, " << unchanged << " already sealed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}

}  // namespace qoracle::cli
