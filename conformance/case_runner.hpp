#pragma once
// Recomputes a fixture case with the reference and checks each expected output.
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "conformance/compare.hpp"
#include "conformance/derived_bounds.hpp"
#include "fixtures/format/fixture_case.hpp"
#include "reference/eetq_linear.hpp"
#include "reference/lora_linear.hpp"
#include "reference/oft_linear.hpp"

namespace qoracle {

// Layer kinds this build understands ("oft/linear", "lora/linear").
std::vector<std::string> known_layer_kinds();

// An EETQ layer from a checkpoint's tensors: `weight` int8 [in, out] in `layout`, `weight_scales`
// float16 [out], an optional bias. `where` prefixes the field names in errors (file, case).
EetqLinear eetq_from_checkpoint_tensors(const Tensor& weight, const Tensor& weight_scales, std::optional<Vector> bias,
                                        EetqLayout layout, EetqKernel kernel, const std::string& where);

// A case's layer: its base, its adapters added and the case's adapters active, computing in
// `dtype` (the case's own, or float64 for the oracle). Layer kinds without an adapter
// ("hqq/quantize", ...) are LoRA layers with none. Throws Error naming file, case and field.
using FixtureLayer = std::variant<OftLayer<DenseLinear>, LoraLayer<DenseLinear>, OftLayer<HqqLinear>, LoraLayer<HqqLinear>,
                                  OftLayer<AqlmLinear>, LoraLayer<AqlmLinear>, OftLayer<EetqLinear>, LoraLayer<EetqLinear>>;
FixtureLayer fixture_layer(const FixtureCase& c, Dtype dtype);

// The reference's value for each named output of the case (names as in expected/).
// Throws Error (naming file, case and field) for bad input or an unknown output.
std::map<std::string, Tensor> evaluate_case(const FixtureCase& c, const std::vector<std::string>& outputs);

// The same, with the derived bound of each output whose producer error grows with the problem
// (conformance/derived_bounds.hpp): what check_case adds to the stored tolerance.
struct CaseEvaluation {
  std::map<std::string, Tensor> outputs;
  std::map<std::string, DerivedBound> bounds;
};
CaseEvaluation evaluate_case_with_bounds(const FixtureCase& c, const std::vector<std::string>& outputs);

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
  std::string note;  // said beside the verdict: e.g. which PEFT release's rules judged a newer one
};

// Why the row is what it is, in one line: its error, else the referee's verdict, else the comparison's.
std::string row_detail(const CheckRow& row);

// A row naming the case (file, case, layer kind, dtype, convention, producer), status Error.
CheckRow case_row(const FixtureCase& c);

// One row per expected output; a case that cannot be evaluated gives one Error row.
std::vector<CheckRow> check_case(const FixtureCase& c);

}  // namespace qoracle
