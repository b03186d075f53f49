#pragma once
// The gradient outputs of a fixture case (fixtures/SCHEMA.md, Gradients): expected/grad_x and
// expected/grad/<adapter>/<param>, from inputs/grad_output, inputs/dropout_noise/<adapter> and the
// case's `training`, by the reference's float64 backward (reference/layer_gradients.hpp).
#include <map>
#include <string>
#include <vector>

#include "fixtures/format/fixture_case.hpp"
#include "reference/layer_gradients.hpp"
#include "reference/lora_linear.hpp"
#include "reference/oft_linear.hpp"

namespace qoracle::fixture_layers {

inline bool is_gradient_output(const std::string& name) { return name == "grad_x" || name.rfind("grad/", 0) == 0; }

// G as a matrix [tokens, out]: its shape must be x's with the last dimension out_features (or,
// where PEFT's DoRA makes a 1-D input's output [1, out], that shape).
Matrix grad_output_matrix(const FixtureCase& c, int out_features, bool leading_dimension_added);

// Each inputs/dropout_noise/<a> as a matrix shaped like x; refused for an adapter that is not a
// LoRA adapter of the case, whose recorded lora_dropout is 0, or in an eval-mode case.
DropoutNoise dropout_noise_of(const FixtureCase& c, const Matrix& x);

// The parameters a gradient output may name for an adapter of the case ("lora_A", ... / "weight").
std::vector<std::string> gradient_parameters(const AdapterRecord& a);

// Every requested gradient output from the layer's backward, into `out`. Adapters that are not
// active get zeros marked as PEFT's None (they take no part in the forward).
void gradient_outputs(const LayerGradients& grads, const FixtureCase& c, const std::vector<std::string>& names,
                      std::map<std::string, Tensor>& out);

template <class Base>
LayerGradients layer_backward(const OftLayer<Base>& layer, const FixtureCase& c, const Matrix& x) {
  if (!dropout_noise_of(c, x).empty()) throw Error("inputs/dropout_noise: OFT adapters draw no dropout noise");
  return layer.backward(x, grad_output_matrix(c, layer.base().out_features(), false), c.training);
}

template <class Base>
LayerGradients layer_backward(const LoraLayer<Base>& layer, const FixtureCase& c, const Matrix& x) {
  return layer.backward(x, grad_output_matrix(c, layer.base().out_features(), layer.forward_adds_leading_dimension()),
                        dropout_noise_of(c, x), c.training);
}

}  // namespace qoracle::fixture_layers
