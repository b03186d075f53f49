#include "conformance/case_runner.hpp"

#include <functional>
#include <type_traits>

#include "conformance/tolerances.hpp"
#include "reference/error.hpp"
#include "reference/lora_linear.hpp"
#include "reference/oft_linear.hpp"

namespace qoracle {

namespace {

OftConfig oft_config_from(const Attributes& a) {
  OftConfig c;
  c.r = static_cast<int>(a.get_int("r"));
  c.oft_block_size = static_cast<int>(a.get_int("oft_block_size"));
  c.coft = a.get_bool("coft");
  c.eps = a.get_double("eps");
  c.block_share = a.get_bool("block_share");
  c.use_cayley_neumann = a.get_bool("use_cayley_neumann");
  c.num_cayley_neumann_terms = static_cast<int>(a.get_int("num_cayley_neumann_terms"));
  return c;
}

LoraConfig lora_config_from(const Attributes& a) {
  LoraConfig c;
  c.r = static_cast<int>(a.get_int("r"));
  c.lora_alpha = a.get_double("lora_alpha");
  c.use_rslora = a.get_bool("use_rslora");
  c.lora_bias = a.get_bool("lora_bias");
  c.use_dora = a.get_bool("use_dora");
  return c;
}

const Tensor& tensor_of(const AdapterRecord& a, const std::string& name) {
  auto it = a.tensors.find(name);
  if (it == a.tensors.end()) throw Error("adapters/" + a.name + ": missing dataset '" + name + "'");
  return it->second;
}

std::optional<Vector> optional_vector(const AdapterRecord& a, const std::string& name) {
  auto it = a.tensors.find(name);
  if (it == a.tensors.end()) return std::nullopt;
  return it->second.as_vector("adapters/" + a.name + "/" + name);
}

DenseLinear base_from(const FixtureCase& c) {
  if (c.base_weight.shape.size() != 2)
    throw Error("base/weight: expected rank 2 (out, in), got shape " + c.base_weight.shape_string());
  std::optional<Vector> bias;
  if (c.base_bias) bias = c.base_bias->as_vector("base/bias");
  return DenseLinear(c.base_weight.as_matrix("base/weight"), std::move(bias));
}

// Outputs shaped like x with the last dimension replaced by out_features.
Tensor activation_tensor(const Matrix& y, const FixtureCase& c) {
  std::vector<std::int64_t> shape = c.x.shape;
  shape.back() = y.cols();
  return Tensor::from_matrix(y, Dtype::Float64, shape);
}

template <class Layer>
std::map<std::string, Tensor> evaluate_layer(Layer layer, const FixtureCase& c, const std::vector<std::string>& outputs) {
  if (c.x.shape.empty()) throw Error("inputs/x: expected rank >= 1, got a scalar");
  const Matrix x = c.x.as_matrix("inputs/x");
  layer.set_active_adapters(c.active_adapters);
  std::map<std::string, Tensor> out;
  bool wants_merge = false;
  for (const auto& name : outputs) {
    if (name == "forward") {
      out[name] = activation_tensor(layer.forward(x), c);
    } else if (name == "forward_disabled") {
      Layer copy = layer;
      out[name] = activation_tensor(copy.forward_disabled(x), c);
    } else if (name.rfind("delta_weight/", 0) == 0) {
      out[name] = Tensor::from_matrix(layer.delta_weight(name.substr(13)), Dtype::Float64);
    } else if (name.rfind("weight_after_forward/", 0) == 0 && std::is_same_v<Layer, OftLinear>) {
      if constexpr (std::is_same_v<Layer, OftLinear>)
        out[name] = Tensor::from_matrix(layer.weight_after_forward(name.substr(21)), Dtype::Float64);
    } else if (name == "merged_weight" || name == "merged_bias" || name == "forward_merged" ||
               name == "unmerged_weight" || name == "unmerged_bias") {
      wants_merge = true;
    } else {
      throw Error("expected/" + name +
                  ": unknown output; known: forward, forward_disabled, delta_weight/<adapter>, "
                  "weight_after_forward/<adapter> (OFT), merged_weight, merged_bias, forward_merged, unmerged_weight, "
                  "unmerged_bias");
    }
  }
  if (wants_merge) {
    layer.merge(c.merge_adapters.empty() ? c.active_adapters : c.merge_adapters);
    out["merged_weight"] = Tensor::from_matrix(layer.base().weight(), Dtype::Float64);
    if (layer.base().bias()) out["merged_bias"] = Tensor::from_vector(*layer.base().bias(), Dtype::Float64);
    out["forward_merged"] = activation_tensor(layer.forward(x), c);
    layer.unmerge();
    out["unmerged_weight"] = Tensor::from_matrix(layer.base().weight(), Dtype::Float64);
    if (layer.base().bias()) out["unmerged_bias"] = Tensor::from_vector(*layer.base().bias(), Dtype::Float64);
  }
  std::map<std::string, Tensor> requested;
  for (const auto& name : outputs) {
    auto it = out.find(name);
    if (it == out.end()) throw Error("expected/" + name + ": this layer has no such output (no base bias?)");
    requested[name] = it->second;
  }
  return requested;
}

std::map<std::string, Tensor> evaluate_oft_linear(const FixtureCase& c, const std::vector<std::string>& outputs) {
  OftLinear layer(base_from(c), c.convention);
  layer.set_compute_dtype(c.dtype);
  for (const AdapterRecord& a : c.adapters) {
    try {
      layer.add_adapter(a.name, oft_config_from(a.config), tensor_of(a, "weight").as_matrix("weight"));
    } catch (const Error& e) {
      throw e.within("adapters/" + a.name);
    }
  }
  return evaluate_layer(std::move(layer), c, outputs);
}

std::map<std::string, Tensor> evaluate_lora_linear(const FixtureCase& c, const std::vector<std::string>& outputs) {
  LoraLinear layer(base_from(c), c.convention);
  layer.set_compute_dtype(c.dtype);
  for (const AdapterRecord& a : c.adapters) {
    try {
      layer.add_adapter(a.name, lora_config_from(a.config), tensor_of(a, "lora_A").as_matrix("lora_A"),
                        tensor_of(a, "lora_B").as_matrix("lora_B"), optional_vector(a, "lora_B_bias"),
                        optional_vector(a, "magnitude"));
    } catch (const Error& e) {
      throw e.within("adapters/" + a.name);
    }
  }
  return evaluate_layer(std::move(layer), c, outputs);
}

using Evaluator = std::function<std::map<std::string, Tensor>(const FixtureCase&, const std::vector<std::string>&)>;

const std::map<std::string, Evaluator>& evaluators() {
  static const std::map<std::string, Evaluator> table{
      {"oft/linear", evaluate_oft_linear},
      {"lora/linear", evaluate_lora_linear},
  };
  return table;
}

}  // namespace

std::vector<std::string> known_layer_kinds() {
  std::vector<std::string> kinds;
  for (const auto& [k, _] : evaluators()) kinds.push_back(k);
  return kinds;
}

std::map<std::string, Tensor> evaluate_case(const FixtureCase& c, const std::vector<std::string>& outputs) {
  auto it = evaluators().find(c.layer_kind);
  if (it == evaluators().end()) {
    std::string known;
    for (const auto& k : known_layer_kinds()) known += (known.empty() ? "" : ", ") + k;
    throw Error(c.where() + ": layer_kind '" + c.layer_kind + "' is unknown; expected one of " + known);
  }
  try {
    return it->second(c, outputs);
  } catch (const Error& e) {
    throw e.within(c.where());
  }
}

const char* status_name(CheckStatus s) {
  switch (s) {
    case CheckStatus::Pass: return "PASS";
    case CheckStatus::Fail: return "FAIL";
    case CheckStatus::Error: return "ERROR";
  }
  return "?";
}

std::vector<CheckRow> check_case(const FixtureCase& c) {
  CheckRow proto;
  proto.file = c.file;
  proto.case_name = c.name;
  proto.layer_kind = c.layer_kind;
  proto.dtype = dtype_name(c.dtype);
  proto.convention = convention_name(c.convention);
  proto.producer = c.producer;
  std::vector<std::string> names;
  for (const auto& e : c.expected) names.push_back(e.name);
  std::map<std::string, Tensor> actual, oracle;
  const bool low_precision = c.dtype != Dtype::Float64;
  try {
    actual = evaluate_case(c, names);
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
    row.comparison = compare(e.value, actual.at(e.name), e.tolerance);
    row.status = row.comparison.passed ? CheckStatus::Pass : CheckStatus::Fail;
    rows.push_back(row);
    if (low_precision) {
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
