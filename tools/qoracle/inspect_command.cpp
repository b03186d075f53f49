#include <iostream>
#include <variant>

#include "fixtures/format/fixture_case.hpp"
#include "fixtures/format/isolated_read.hpp"
#include "reference/error.hpp"
#include "tools/qoracle/commands.hpp"

namespace qoracle::cli {

namespace {

std::string attr_text(const AttrValue& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) {
    std::ostringstream s;
    s << *d;
    return s.str();
  }
  return std::get<std::string>(v);
}

}  // namespace

int inspect_command(const std::vector<std::string>& args) {
  if (args.size() != 1) throw Error("expected exactly one fixture file");
  const std::string& path = args[0];
  const FileRead read = read_fixture_file_isolated(path);  // a file that crashes HDF5 is an error here
  if (!read.error.empty() && read.cases.empty()) throw Error(read.error);
  std::cout << path << ": " << read.cases.size() << " case(s)\n";
  for (const auto& note : read.notes) std::cout << "note: " << note << "\n";
  int errors = read.error.empty() ? 0 : 1;
  if (errors) std::cout << "ERROR " << read.error << "\n";
  for (const CaseRead& one : read.cases) {
    if (!one.fixture) {
      std::cout << "\n" << one.name << "\n  ERROR " << one.error << "\n";
      ++errors;
      continue;
    }
    const FixtureCase& c = *one.fixture;
    std::cout << "\n" << c.name << "\n"
              << "  layer_kind " << c.layer_kind << ", dtype " << dtype_name(c.dtype) << ", convention "
              << convention_name(c.convention) << ", seed " << c.seed << ", schema v" << c.schema_version << "\n"
              << "  producer " << c.producer << " " << c.producer_versions << "\n"
              << "  base:";
    for (const auto& [k, v] : c.base.config.values) std::cout << " " << k << "=" << attr_text(v);
    for (const auto& [k, t] : c.base.tensors) std::cout << " " << k << t.shape_string();
    std::cout << "\n  inputs/x "<< c.x.shape_string() << " (" << dtype_name(c.x.logical_dtype) << ")\n"
              << "  active adapters: " << join_list(c.active_adapters) << "\n";
    for (const auto& a : c.adapters) {
      std::cout << "  adapter " << a.name << ":";
      for (const auto& [k, v] : a.config.values) std::cout << " " << k << "=" << attr_text(v);
      for (const auto& [k, t] : a.tensors) std::cout << " " << k << t.shape_string();
      std::cout << "\n";
    }
    for (const auto& e : c.expected)
      std::cout << "  expected " << e.name << " " << e.value.shape_string() << " " << dtype_name(e.value.logical_dtype)
                << " atol=" << e.tolerance.atol << " rtol=" << e.tolerance.rtol << "\n";
  }
  return errors == 0 ? 0 : 1;
}

}  // namespace qoracle::cli
