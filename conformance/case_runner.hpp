#pragma once
// Recomputes a fixture case with the reference and checks each expected output.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "conformance/compare.hpp"
#include "fixtures/format/fixture_case.hpp"
#include "reference/eetq_linear.hpp"

namespace qoracle {

// Layer kinds this build understands ("oft/linear", "lora/linear").
std::vector<std::string> known_layer_kinds();

// An EETQ layer from a checkpoint's tensors: `weight` int8 [in, out] in `layout`, `weight_scales`
// float16 [out], an optional bias. `where` prefixes the field names in errors (file, case).
EetqLinear eetq_from_checkpoint_tensors(const Tensor& weight, const Tensor& weight_scales, std::optional<Vector> bias,
                                        EetqLayout layout, EetqKernel kernel, const std::string& where);

// The reference's value for each named output of the case (names as in expected/).
// Throws Error (naming file, case and field) for bad input or an unknown output.
std::map<std::string, Tensor> evaluate_case(const FixtureCase& c, const std::vector<std::string>& outputs);

enum class CheckStatus { Pass, Fail, Error };
const char* status_name(CheckStatus s);

struct CheckRow {
  std::string file;
  std::string case_name;
  std::string output;  // empty for a case-level error
  std::string layer_kind, dtype, convention, producer;
  CheckStatus status = CheckStatus::Error;
  Comparison comparison;                   // against the expected value, with its tolerance
  std::optional<OracleJudgement> referee;  // low-precision cases: the fp64-referee row
  std::string error;
};

// One row per expected output; a case that cannot be evaluated gives one Error row.
std::vector<CheckRow> check_case(const FixtureCase& c);

}  // namespace qoracle
