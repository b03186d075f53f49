#pragma once
// Merge and unmerge judged stage by stage (conformance/TOLERANCES.md, "Stage-wise judging"): each
// stage starts from the producer's own output of the stage before, where the case records it, so a
// difference is charged to the stage that made it and not to every stage after it.
//  - The unmerge starts from the producer's merged state (expected/merged_*), and forward_merged
//    runs on it.
//  - A quantized base's requantization (hqq's optimizer, chaotic: one ulp in its input can move a
//    group's zero) quantizes the producer's own float input, expected/requantize_input/<phase>_<k>;
//    the reference's float input is itself an output, judged with the derived bound of the float
//    computation that made it (derived_bounds.hpp).
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "conformance/derived_bounds.hpp"
#include "conformance/layers/aqlm_base.hpp"
#include "conformance/layers/dense_base.hpp"
#include "conformance/layers/eetq_base.hpp"
#include "conformance/layers/hqq_base.hpp"
#include "fixtures/format/fixture_case.hpp"
#include "reference/error.hpp"
#include "reference/lora_linear.hpp"
#include "reference/oft_linear.hpp"

namespace qoracle::fixture_layers {

// Each weight the reference hands the quantizer, recorded as requantize_input/<phase>_<k>, and the
// producer's input of the same step returned in its place where the case records it.
class RequantizeLog {
 public:
  RequantizeLog(const FixtureCase& c, std::map<std::string, Tensor>& out) : case_(c), out_(out) {}
  void start(const std::string& phase) {
    phase_ = phase;
    step_ = 0;
  }
  Matrix operator()(const Matrix& weight) {
    const std::string name = "requantize_input/" + phase_ + "_" + std::to_string(++step_);
    out_[name] = Tensor::from_matrix(weight, Dtype::Float64);
    // A recorded input of another shape is not used; its own row fails on the shape instead.
    for (const auto& e : case_.expected)
      if (e.name == name && e.value.shape == std::vector<std::int64_t>{weight.rows(), weight.cols()})
        return e.value.as_matrix("expected/" + name);
    return weight;
  }

 private:
  const FixtureCase& case_;
  std::map<std::string, Tensor>& out_;
  std::string phase_;
  int step_ = 0;
};

template <class Base>
void attach(Base&, RequantizeLog&) {}  // bases that do not requantize
inline void attach(HqqLinear& base, RequantizeLog& log) {
  base.set_requantize_hook([&log](const Matrix& w) { return log(w); });
}
template <class Base>
void detach(Base&) {}
inline void detach(HqqLinear& base) { base.set_requantize_hook(nullptr); }  // the log dies with the merge

// The bound of the producer's float weight after merging (unmerging) `names`, as PEFT computes it.
// `weight`: the weight merged into (unmerged from); `unmerged`: the base before the merge.
template <class Base>
DerivedBound merge_bound(const OftLayer<Base>& layer, const std::vector<std::string>& names, bool unmerge,
                         const Matrix& weight, const Matrix& /*unmerged*/) {
  DerivedBound total;
  for (const auto& name : names) {
    std::vector<Matrix> blocks = layer.adapter(name).block_rotations();
    for (Matrix& r : blocks) r = round_to(Dtype::Float32, r);  // what PEFT inverts (oft_mat.to(float32))
    // torch's CPU matmul accumulates 16-bit operands in float32 and rounds the result once (which
    // the stored rule covers): the sum's own error is float32's.
    const Dtype product = layer.adapter_dtype(name) == Dtype::Float64 ? Dtype::Float64 : Dtype::Float32;
    total += unmerge && !layer.unmerges_by_multiplying_with_rotation()
                 ? float32_inverse_unmerge_bound(blocks, weight, product)
                 : rotation_product_bound(blocks, weight, product);
  }
  return total;
}

template <class Base>
DerivedBound merge_bound(const LoraLayer<Base>& layer, const std::vector<std::string>& names, bool unmerge,
                         const Matrix& weight, const Matrix& unmerged) {
  DerivedBound total;
  const Dtype weight_dtype = layer.compute_dtype();
  for (const auto& name : names) {
    const LoraAdapter& a = layer.adapter(name);
    const Dtype ad = layer.adapter_dtype(name);
    const bool rounded = unmerge && Base::peft_quirks.lora_unmerge_rounds_delta && !a.config().use_dora;
    DerivedBound delta = lora_delta_bound(a, ad, rounded ? weight_dtype : Dtype::Float64);
    if (a.config().use_dora && ad != Dtype::Float64) {
      // g multiplies the delta's error on merge; unmerge divides W' by g.
      const Vector g = layer.dora_scale(a, unmerged);
      const double largest = unmerge ? (weight.array().colwise() / g.array()).abs().maxCoeff() : weight.cwiseAbs().maxCoeff();
      if (!unmerge) delta.value *= g.cwiseAbs().maxCoeff();
      delta += dora_factor_bound(static_cast<int>(weight.cols()), ad, largest);
    }
    total += delta;
  }
  return total;
}

// Substitutes the producer's recorded merged state for the reference's, where the case has it in
// the right shapes (a malformed one is not used: its own merged_* row fails on it instead).
inline void use_producer_state(DenseLinear& base, const FixtureCase& c) {
  for (const auto& e : c.expected)
    if (e.name == "merged_weight" && e.value.shape == std::vector<std::int64_t>{base.out_features(), base.in_features()})
      base.set_weight(e.value.as_matrix("expected/merged_weight"));
    else if (e.name == "merged_bias" && base.bias() && e.value.element_count() == base.out_features())
      base.set_bias(e.value.as_vector("expected/merged_bias"));
}
inline void use_producer_state(HqqLinear& base, const FixtureCase& c) {
  if (auto state = producer_hqq_state(base, c, "merged")) base = std::move(*state);
}
inline void use_producer_state(AqlmLinear&, const FixtureCase&) {}  // PEFT refuses these merges
inline void use_producer_state(EetqLinear&, const FixtureCase&) {}

// merged_*, forward_merged and unmerged_* of the case's merge, and requantize_input/* where the
// base requantizes; `bounds` receives the derived bounds of the float weights (PEFT convention).
// `to_tensor(layer, y)` shapes a forward's result as the case's output.
template <class Layer, class ToTensor>
void stagewise_merge_outputs(Layer& layer, const FixtureCase& c, const Matrix& x, std::map<std::string, Tensor>& out,
                             std::map<std::string, DerivedBound>& bounds, ToTensor to_tensor) {
  const std::vector<std::string> names = c.merge_adapters.empty() ? c.active_adapters : c.merge_adapters;
  const bool peft = c.convention == Convention::Peft;
  const Matrix unmerged = layer.base().weight();
  RequantizeLog log(c, out);
  attach(layer.mutable_base(), log);
  log.start("merge");
  if (peft) bounds["merge"] = merge_bound(layer, names, false, unmerged, unmerged);
  layer.merge(names);
  base_outputs(layer.base(), "merged", out);
  use_producer_state(layer.mutable_base(), c);
  attach(layer.mutable_base(), log);  // a substituted base has no hook yet
  out["forward_merged"] = to_tensor(layer, layer.forward(x));
  if (peft) {
    std::vector<std::string> merged(layer.merged_adapters().rbegin(), layer.merged_adapters().rend());
    bounds["unmerge"] = merge_bound(layer, merged, true, layer.base().weight(), unmerged);
  }
  log.start("unmerge");
  layer.unmerge();
  detach(layer.mutable_base());
  base_outputs(layer.base(), "unmerged", out);
}

// The derived bound that applies to an output of the merge, if any: the float weights PEFT
// computes. A requantized weight (HQQ's merged_weight) is judged by its stage-wise quantizer input.
inline const DerivedBound* merge_output_bound(const std::map<std::string, DerivedBound>& bounds, const std::string& output,
                                              bool base_requantizes) {
  const char* stage = nullptr;
  if ((output == "merged_weight" && !base_requantizes) || output.starts_with("requantize_input/merge_")) stage = "merge";
  if ((output == "unmerged_weight" && !base_requantizes) || output.starts_with("requantize_input/unmerge_")) stage = "unmerge";
  if (!stage) return nullptr;
  const auto it = bounds.find(stage);
  return it == bounds.end() ? nullptr : &it->second;
}

}  // namespace qoracle::fixture_layers
