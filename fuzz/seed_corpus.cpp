#include "fuzz/seed_corpus.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "fixtures/format/case_serialization.hpp"
#include "fixtures/format/file_bytes.hpp"
#include "fixtures/format/fixture_file.hpp"
#include "fixtures/format/seal.hpp"

namespace qoracle::fuzz {

namespace fs = std::filesystem;

namespace {

std::int64_t values_in(const FixtureCase& c) {
  auto n = static_cast<std::int64_t>(c.x.values.size());
  for (const auto& [name, t] : c.base.tensors) n += static_cast<std::int64_t>(t.values.size());
  for (const auto& a : c.adapters)
    for (const auto& [name, t] : a.tensors) n += static_cast<std::int64_t>(t.values.size());
  for (const auto& e : c.expected) n += static_cast<std::int64_t>(e.value.values.size());
  return n;
}

}  // namespace

int write_seed_corpus(const std::string& dir) {
  const fs::path source(QORACLE_SOURCE_DIR), out(dir);
  fs::create_directories(out);
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(source / "fixtures"))
    if (e.is_regular_file() && e.path().extension() == ".h5") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::map<std::string, FixtureCase> smallest;  // by layer kind
  for (const auto& f : files)
    for (const CaseRead& r : read_fixture_file(f.string()).cases) {
      if (!r.fixture) continue;
      auto it = smallest.find(r.fixture->layer_kind);
      if (it == smallest.end() || values_in(*r.fixture) < values_in(it->second)) smallest[r.fixture->layer_kind] = *r.fixture;
    }
  int written = 0;
  const auto write = [&](const std::string& name, Mode mode, const std::string& bytes) {
    std::ofstream(out / name, std::ios::binary) << static_cast<char>(mode) << bytes;
    ++written;
  };
  const fs::path sealed = out / ".seed-sealed.h5", unsealed = out / ".seed-unsealed.h5";
  // Small seeds fuzz faster: a kind whose smallest case serializes to more than 200 KB (the 128x128
  // hqq/quantize layers) is left out; the unsealed and serialized forms only below 64 KB.
  for (auto& [kind, c] : smallest) {
    std::string name = kind;
    std::replace(name.begin(), name.end(), '/', '_');
    c.file = fs::relative(c.file, source).string();  // no machine's path in the corpus
    const std::string serialized = serialize_case(c);
    if (serialized.size() > 200000) continue;
    write_fixture_file(sealed.string(), {c});
    write("fixture-" + name + "-sealed", Mode::FixtureFile, file_bytes(sealed.string()));
    if (serialized.size() > 65536) continue;
    write_unsealed_copy(sealed.string(), unsealed.string());
    write("fixture-" + name + "-unsealed", Mode::FixtureFile, file_bytes(unsealed.string()));
    write("case-" + name, Mode::SerializedCase, serialized);
  }
  const fs::path checkpoint = source / "fixtures/eetq/eetq-465e972/checkpoint_layer_sm80.hdf5";
  write_unsealed_copy(checkpoint.string(), unsealed.string());
  write("checkpoint-sealed", Mode::Checkpoint, file_bytes(checkpoint.string()));
  write("checkpoint-unsealed", Mode::Checkpoint, file_bytes(unsealed.string()));
  fs::remove(sealed);
  fs::remove(unsealed);
  std::cout << "wrote " << written << " seeds to " << dir << "\n";
  return 0;
}

}  // namespace qoracle::fuzz
