#pragma once
// The generic evaluation of a fixture layer: each named output of expected/ computed by the
// reference layer, whatever its base and adapter kind.
#include <algorithm>
#include <cmath>
#include <map>
#include <type_traits>
#include <string>
#include <vector>

#include "conformance/layers/aqlm_base.hpp"
#include "conformance/layers/dense_base.hpp"
#include "conformance/layers/eetq_base.hpp"
#include "conformance/layers/gradient_outputs.hpp"
#include "conformance/layers/hqq_base.hpp"
#include "conformance/layers/stagewise_merge.hpp"
#include "fixtures/format/fixture_case.hpp"
#include "reference/error.hpp"

namespace qoracle::fixture_layers {

// Stage-wise judging of torch's half GEMM: the one-flip allowance (half_gemm_flip_bound) is for
// the base's GEMM, whose result the producer recorded alone as forward_disabled. A LoRA forward
// runs that same GEMM on the same x: where forward_disabled is bit-identical to the emulation, the
// GEMM flipped nothing and the forwards stay exact (so a wrong rounding in the adapter's branch,
// e.g. its scaling, is still seen). OFT's forward multiplies the rotated x, another GEMM whose
// flips forward_disabled cannot show: it keeps the allowance, as does a case without
// forward_disabled.
template <class Layer>
constexpr bool is_lora_layer = requires(const Layer& l) { l.adapter(std::string()).scaling(); };

inline bool base_gemm_may_have_flipped(const FixtureCase& c, const std::map<std::string, Tensor>& computed) {
  const auto recorded = std::find_if(c.expected.begin(), c.expected.end(),
                                     [](const ExpectedOutput& e) { return e.name == "forward_disabled"; });
  const auto mine = computed.find("forward_disabled");
  if (recorded == c.expected.end() || mine == computed.end()) return true;
  return recorded->value.values != mine->second.values;
}

// Bases without a quantizer in qoracle (the overloads in hqq_base/eetq_base take the others).
template <class Base>
void quantizer_outputs(const Base&, const FixtureCase&, std::map<std::string, Tensor>&) {
  throw Error("expected/quantized_*: this base layer has no quantizer in qoracle");
}

// Only EETQ layers decode a stored byte layout (eetq_base.hpp).
template <class Base>
Tensor decoded_codes(const Base&) {
  throw Error("expected/decoded_codes: only EETQ layers decode a stored byte layout");
}

// Outputs shaped like x with the last dimension replaced by out_features.
inline Tensor activation_tensor(const Matrix& y, const FixtureCase& c) {
  std::vector<std::int64_t> shape = c.x.shape;
  shape.back() = y.cols();
  return Tensor::from_matrix(y, Dtype::Float64, shape);
}

// LoRA layers whose PEFT forward returns [1, out] for a 1-D input (DoRA's broadcast).
template <class Layer>
constexpr bool may_add_leading_dimension = requires(const Layer& l) { l.forward_adds_leading_dimension(); };

template <class Layer>
Tensor forward_tensor(const Layer& layer, const Matrix& y, const FixtureCase& c) {
  Tensor t = activation_tensor(y, c);
  if constexpr (may_add_leading_dimension<Layer>)
    if (c.x.shape.size() == 1 && layer.forward_adds_leading_dimension()) t.shape.insert(t.shape.begin(), 1);
  return t;
}

// OFT layers report their parameter after a forward (COFT may rewrite it); LoRA has no such state.
template <class Layer>
constexpr bool has_parameter_after_forward = requires(const Layer& l) { l.weight_after_forward(std::string()); };

// LoRA layers run a training forward with the recorded dropout noise (OFT draws none).
template <class Layer>
constexpr bool has_training_forward = requires(const Layer& l) { l.forward_training(Matrix(), DropoutNoise()); };

template <class Layer>
Matrix forward_of(const Layer& layer, const FixtureCase& c, const Matrix& x) {
  if constexpr (has_training_forward<Layer>)
    if (!c.dropout_noise.empty()) return layer.forward_training(x, dropout_noise_of(c, x));
  return layer.forward(x);
}

// `bounds`, where given, receives the derived bound (derived_bounds.hpp) of each output that has one.
template <class Layer>
std::map<std::string, Tensor> evaluate_layer(Layer layer, const FixtureCase& c, const std::vector<std::string>& outputs,
                                             std::map<std::string, DerivedBound>* bounds = nullptr) {
  if (c.x.shape.empty()) throw Error("inputs/x: expected rank >= 1, got a scalar");
  const Matrix x = c.x.as_matrix("inputs/x");
  std::map<std::string, Tensor> out;
  bool wants_merge = false, wants_gradients = false;
  for (const auto& name : outputs) {
    if (name == "forward") {
      out[name] = forward_tensor(layer, forward_of(layer, c, x), c);
    } else if (is_gradient_output(name)) {
      wants_gradients = true;
    } else if (name == "forward_disabled") {
      Layer copy = layer;
      out[name] = activation_tensor(copy.forward_disabled(x), c);
    } else if (name.rfind("delta_weight/", 0) == 0) {
      out[name] = Tensor::from_matrix(layer.delta_weight(name.substr(13)), Dtype::Float64);
      if constexpr (requires { layer.adapter(std::string()).scaling(); }) {
        if (bounds && c.convention == Convention::Peft)
          (*bounds)[name] = lora_delta_bound(layer.adapter(name.substr(13)), layer.adapter_dtype(name.substr(13)));
      } else if (bounds && c.convention == Convention::Peft) {
        // OFT's delta is W R^T - W: the product's float32 error stays whole in the (smaller) difference.
        const Matrix w = layer.base().weight();
        (*bounds)[name] = merge_bound(layer, {name.substr(13)}, false, w, w);
      }
    } else if (name.rfind("weight_after_forward/", 0) == 0 && has_parameter_after_forward<Layer>) {
      if constexpr (has_parameter_after_forward<Layer>)
        out[name] = Tensor::from_matrix(layer.weight_after_forward(name.substr(21)), Dtype::Float64);
    } else if (name == "dequantized_weight") {
      out[name] = Tensor::from_matrix(layer.base().weight(), Dtype::Float64);
    } else if (name == "decoded_codes") {
      out[name] = decoded_codes(layer.base());
    } else if (name.rfind("quantized_", 0) == 0) {
      quantizer_outputs(layer.base(), c, out);
    } else if (name.rfind("merged_", 0) == 0 || name.rfind("unmerged_", 0) == 0 || name == "forward_merged" ||
               name.rfind("requantize_input/", 0) == 0) {
      wants_merge = true;
    } else {
      throw Error("expected/" + name +
                  ": unknown output; known: forward, forward_disabled, delta_weight/<adapter>, "
                  "weight_after_forward/<adapter> (OFT), dequantized_weight, decoded_codes (EETQ), quantized_{codes,scale,zero}, "
                  "merged_{weight,bias,codes,scale,zero}, forward_merged, unmerged_{weight,bias,codes,scale,zero}, "
                  "requantize_input/{merge,unmerge}_<k>, grad_x, grad/<adapter>/<parameter>");
    }
  }
  // Gradients of the forward as the case states it (before any merge below).
  if (wants_gradients) gradient_outputs(layer_backward(layer, c, x), c, outputs, out);
  if (wants_merge) {
    std::map<std::string, DerivedBound> merge_bounds;
    stagewise_merge_outputs(layer, c, x, out, merge_bounds,
                            [&c](const Layer& l, const Matrix& y) { return forward_tensor(l, y, c); });
    constexpr bool requantizes = std::is_same_v<std::decay_t<decltype(layer.base())>, HqqLinear>;
    if (bounds)
      for (const auto& name : outputs)
        if (const DerivedBound* b = merge_output_bound(merge_bounds, name, requantizes)) (*bounds)[name] = *b;
  }
  if constexpr (std::is_same_v<std::decay_t<decltype(layer.base())>, AqlmLinear>)
    if (bounds && layer.base().kernel() == AqlmKernel::DequantizeGemm &&
        (!is_lora_layer<Layer> || base_gemm_may_have_flipped(c, out)))
      for (const char* name : {"forward", "forward_disabled"})
        if (const auto it = out.find(name); it != out.end()) {
          double largest = 0.0;
          for (double v : it->second.values) largest = std::max(largest, std::abs(v));
          if (DerivedBound b = half_gemm_flip_bound(c.dtype, largest); b.value > 0) (*bounds)[name] = b;
        }
  std::map<std::string, Tensor> requested;
  for (const auto& name : outputs) {
    auto it = out.find(name);
    if (it == out.end() && name.rfind("requantize_input/", 0) == 0)
      throw Error("expected/" + name + ": the producer requantized more often than the reference did in that phase");
    if (it == out.end()) throw Error("expected/" + name + ": this layer has no such output (no base bias?)");
    requested[name] = it->second;
  }
  return requested;
}

}  // namespace qoracle::fixture_layers
