#include "conformance/case_runner.hpp"

#include <functional>
#include <variant>

#include "conformance/layers/adapter_records.hpp"
#include "conformance/layers/evaluate_layer.hpp"
#include "conformance/tolerances.hpp"
#include "reference/error.hpp"

namespace qoracle {

namespace {

using namespace fixture_layers;

using LayerBuilder = std::function<FixtureLayer(const FixtureCase&, Dtype)>;

// A layer kind with no adapter (a base's quantizer and forward alone) is a LoRA layer without adapters.
const std::map<std::string, LayerBuilder>& layer_builders() {
  static const std::map<std::string, LayerBuilder> table{
      {"oft/linear", [](const FixtureCase& c, Dtype d) { return FixtureLayer(oft_layer_from(dense_base_from(c), c, d)); }},
      {"lora/linear", [](const FixtureCase& c, Dtype d) { return FixtureLayer(lora_layer_from(dense_base_from(c), c, d)); }},
      {"oft/hqq", [](const FixtureCase& c, Dtype d) { return FixtureLayer(oft_layer_from(hqq_base_from(c), c, d)); }},
      {"lora/hqq", [](const FixtureCase& c, Dtype d) { return FixtureLayer(lora_layer_from(hqq_base_from(c), c, d)); }},
      {"hqq/quantize", [](const FixtureCase& c, Dtype d) { return FixtureLayer(lora_layer_from(hqq_base_from(c), c, d)); }},
      {"oft/aqlm", [](const FixtureCase& c, Dtype d) { return FixtureLayer(oft_layer_from(aqlm_base_from(c, d), c, d)); }},
      {"lora/aqlm", [](const FixtureCase& c, Dtype d) { return FixtureLayer(lora_layer_from(aqlm_base_from(c, d), c, d)); }},
      // e.g. made by qoracle's quantizer and run by the real library
      {"aqlm/quantized", [](const FixtureCase& c, Dtype d) { return FixtureLayer(lora_layer_from(aqlm_base_from(c, d), c, d)); }},
      {"oft/eetq", [](const FixtureCase& c, Dtype d) { return FixtureLayer(oft_layer_from(eetq_base_from(c, d), c, d)); }},
      {"lora/eetq", [](const FixtureCase& c, Dtype d) { return FixtureLayer(lora_layer_from(eetq_base_from(c, d), c, d)); }},
      {"eetq/quantize", [](const FixtureCase& c, Dtype d) { return FixtureLayer(lora_layer_from(eetq_base_from(c, d), c, d)); }},
  };
  return table;
}

}  // namespace

std::vector<std::string> known_layer_kinds() {
  std::vector<std::string> kinds;
  for (const auto& [k, _] : layer_builders()) kinds.push_back(k);
  return kinds;
}

FixtureLayer fixture_layer(const FixtureCase& c, Dtype dtype) {
  auto it = layer_builders().find(c.layer_kind);
  if (it == layer_builders().end()) {
    std::string known;
    for (const auto& k : known_layer_kinds()) known += (known.empty() ? "" : ", ") + k;
    throw Error(c.where() + ": layer_kind '" + c.layer_kind + "' is unknown; expected one of " + known);
  }
  try {
    return it->second(c, dtype);
  } catch (const Error& e) {
    throw e.within(c.where());
  }
}

CaseEvaluation evaluate_case_with_bounds(const FixtureCase& c, const std::vector<std::string>& outputs) {
  FixtureLayer layer = fixture_layer(c, c.dtype);
  CaseEvaluation result;
  try {
    result.outputs = std::visit([&](auto& l) { return evaluate_layer(std::move(l), c, outputs, &result.bounds); }, layer);
  } catch (const Error& e) {
    throw e.within(c.where());
  }
  return result;
}

std::map<std::string, Tensor> evaluate_case(const FixtureCase& c, const std::vector<std::string>& outputs) {
  return evaluate_case_with_bounds(c, outputs).outputs;
}

const char* status_name(CheckStatus s) {
  switch (s) {
    case CheckStatus::Pass: return "PASS";
    case CheckStatus::Fail: return "FAIL";
    case CheckStatus::Error: return "ERROR";
  }
  return "?";
}

std::string row_detail(const CheckRow& row) {
  if (!row.error.empty()) return row.error;
  return row.referee ? row.referee->message() : row.comparison.message();
}

CheckRow case_row(const FixtureCase& c) {
  CheckRow row;
  row.file = c.file;
  row.case_name = c.name;
  row.layer_kind = c.layer_kind;
  row.dtype = dtype_name(c.dtype);
  row.convention = convention_name(c.convention);
  row.producer = c.producer;
  return row;
}

std::vector<CheckRow> check_case(const FixtureCase& c) {
  CheckRow proto = case_row(c);
  std::vector<std::string> names;
  for (const auto& e : c.expected) names.push_back(e.name);
  std::map<std::string, Tensor> actual, oracle;
  std::map<std::string, DerivedBound> bounds;
  const bool low_precision = c.dtype != Dtype::Float64;
  try {
    CaseEvaluation evaluation = evaluate_case_with_bounds(c, names);
    if (c.convention == Convention::Peft) proto.note = fixture_layers::release_note(c);  // read cleanly above
    actual = std::move(evaluation.outputs);
    bounds = std::move(evaluation.bounds);
    if (low_precision) {
      FixtureCase exact = c;  // the same (already rounded) inputs, no intermediate rounding
      exact.dtype = Dtype::Float64;
      oracle = evaluate_case(exact, names);
    }
  } catch (const Error& e) {
    proto.error = e.what();
    return {proto};
  }
  std::vector<CheckRow> rows;
  for (const auto& e : c.expected) {
    CheckRow row = proto;
    row.output = e.name;
    const auto derived = bounds.find(e.name);
    row.comparison = derived == bounds.end()
                         ? compare(e.value, actual.at(e.name), e.tolerance)
                         : compare(e.value, actual.at(e.name), e.tolerance, derived->second.value, derived->second.why);
    row.status = row.comparison.passed ? CheckStatus::Pass : CheckStatus::Fail;
    rows.push_back(row);
    const bool quantizer_state = e.name.ends_with("_codes") || e.name.ends_with("_scale") || e.name.ends_with("_zero");
    if (low_precision && !quantizer_state) {
      // The fp64 referee: our emulation may be at most k times as far from the float64 truth as
      // the producer's own result in this dtype (TOLERANCES.md).
      CheckRow ref = proto;
      ref.output = e.name + "@fp64-referee";
      ref.referee = judge_against_oracle(oracle.at(e.name), e.value, actual.at(e.name), oracle_factor(e.value.logical_dtype),
                                         e.value.logical_dtype);
      ref.status = ref.referee->passed ? CheckStatus::Pass : CheckStatus::Fail;
      rows.push_back(ref);
    }
  }
  return rows;
}

}  // namespace qoracle
