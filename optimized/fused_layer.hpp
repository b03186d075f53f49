#pragma once
// A reference layer's stored tensors and one adapter, as the fused GEMV takes them (float32, the
// base in its own stored layout). The bridge between the oracle's types and the kernels' plain data.
#include <string>
#include <vector>

#include "optimized/fused_weights.hpp"
#include "reference/coft.hpp"
#include "reference/eetq_format.hpp"
#include "reference/lora_linear.hpp"
#include "reference/oft_linear.hpp"

namespace qoracle::optimized {

std::vector<float> to_floats(const Matrix& m);  // row-major
Matrix from_floats(const std::vector<float>& v, int rows, int cols);

HostLayer host_base(const DenseLinear& base);
HostLayer host_base(const HqqLinear& base);
HostLayer host_base(const AqlmLinear& base);
HostLayer host_base(const EetqLinear& base, EetqLayout layout = EetqLayout::Interleaved);

// PEFT's rotation direction (its Neumann series is the transpose of the math convention's).
template <class Base>
HostLayer host_layer(const OftLayer<Base>& layer, const std::string& adapter) {
  HostLayer l = host_base(layer.base());
  const OftAdapter& a = layer.adapter(adapter);
  // The stored (unprojected) parameters: COFT's projection runs in the batched Cayley.
  const Matrix& w = a.weight();
  l.oft_params = to_floats(w);
  l.oft_rows = static_cast<int>(w.rows());
  l.oft_block_size = a.blocks().block_size;
  l.block_share = a.config().block_share;
  l.neumann = a.config().use_cayley_neumann;
  l.terms = a.config().num_cayley_neumann_terms;
  if (a.config().coft) l.coft_radius = static_cast<float>(coft_radius(a.config().eps, l.oft_rows, Convention::Peft));
  return l;
}

template <class Base>
HostLayer host_layer(const LoraLayer<Base>& layer, const std::string& adapter) {
  HostLayer l = host_base(layer.base());
  const LoraAdapter& a = layer.adapter(adapter);
  if (a.config().use_dora) throw Error("lora: the fused kernels have no DoRA yet");
  if (a.b_bias()) l.lora_bias = to_floats(*a.b_bias());
  l.lora_a = to_floats(a.a());
  l.lora_b = to_floats(a.b());
  l.rank = static_cast<int>(a.a().rows());
  l.scaling = static_cast<float>(a.scaling());
  return l;
}

// Several LoRA adapters at once, as one stacked adapter: A = [A_1; A_2; ...] (x * A^T once for all
// of them), B = [s_1 B_1 | s_2 B_2 | ...] with the scalings folded in, lora_bias = sum s_i b_i and
// scaling 1. Equal to PEFT's sum over adapters up to float32 summation order.
template <class Base>
HostLayer host_layer(const LoraLayer<Base>& layer, const std::vector<std::string>& adapters) {
  HostLayer l = host_base(layer.base());
  const int out = l.out_features;
  int rank = 0;
  for (const std::string& name : adapters) rank += static_cast<int>(layer.adapter(name).a().rows());
  l.lora_b.assign(static_cast<std::size_t>(out) * rank, 0.0f);
  std::vector<double> bias(static_cast<std::size_t>(out), 0.0);
  bool any_bias = false;
  int r0 = 0;
  for (const std::string& name : adapters) {
    const LoraAdapter& a = layer.adapter(name);
    if (a.config().use_dora) throw Error("lora: the fused kernels have no DoRA yet (adapter '" + name + "')");
    const double s = a.scaling();
    const std::vector<float> a_rows = to_floats(a.a());
    l.lora_a.insert(l.lora_a.end(), a_rows.begin(), a_rows.end());
    for (int o = 0; o < out; ++o)
      for (Eigen::Index r = 0; r < a.b().cols(); ++r)
        l.lora_b[static_cast<std::size_t>(o) * rank + r0 + r] = static_cast<float>(s * a.b()(o, r));
    if (a.b_bias()) {
      any_bias = true;
      for (int o = 0; o < out; ++o) bias[static_cast<std::size_t>(o)] += s * (*a.b_bias())(o);
    }
    r0 += static_cast<int>(a.a().rows());
  }
  if (any_bias) l.lora_bias.assign(bias.begin(), bias.end());
  l.rank = rank;
  l.scaling = 1.0f;
  return l;
}

}  // namespace qoracle::optimized
