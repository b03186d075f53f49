#pragma once
// A reference layer's stored tensors and adapters, as the fused kernels take them (float32, the
// base in its own stored layout). The bridge between the oracle's types and the kernels' plain data.
#include <optional>
#include <string>
#include <vector>

#include "optimized/layer/host_layer.hpp"
#include "reference/coft.hpp"
#include "reference/eetq_format.hpp"
#include "reference/lora_linear.hpp"
#include "reference/oft_linear.hpp"

namespace qoracle::optimized {

std::vector<float> to_floats(const Matrix& m);  // row-major
std::vector<float> to_floats(const Vector& v);
Matrix from_floats(const std::vector<float>& v, int rows, int cols);

HostLayer host_base(const DenseLinear& base);
HostLayer host_base(const HqqLinear& base);
HostLayer host_base(const AqlmLinear& base);
HostLayer host_base(const EetqLinear& base, EetqLayout layout = EetqLayout::Interleaved);
// The other way: an EETQ base's stored tensors read back by the reference's decoder (independent
// of the kernels' byte views), as an exact (float64) EetqLinear.
EetqLinear eetq_base_of(const HostLayer& layer);

Activations activations_for(Dtype compute_dtype);  // float64 layers run in float32

// One OFT adapter as the kernels take it, in the layer's convention (the Neumann series and COFT's
// radius differ).
HostRotation host_rotation(const OftAdapter& adapter, Convention convention);

// The adapters `names` in this order (PEFT applies active OFT adapters as x R_1 R_2 ...).
template <class Base>
HostLayer host_layer(const OftLayer<Base>& layer, const std::vector<std::string>& names) {
  HostLayer l = host_base(layer.base());
  l.activations = activations_for(layer.compute_dtype());
  for (const std::string& name : names)
    if (layer.adapter(name).blocks().block_size > 1)  // blocks of 1 are R = [1]: nothing to rotate
      l.oft.push_back(host_rotation(layer.adapter(name), layer.convention()));
  return l;
}

// Several LoRA adapters at once, as one stacked adapter: A = [A_1; A_2; ...] (x * A^T once for all
// of them), B = [t_1 s_1 B_1 | t_2 s_2 B_2 | ...] with the scalings folded in, lora_bias =
// sum t_i s_i b_i and scaling 1. A DoRA adapter scales the result so far (less the base bias) by
// g_i = m_i / rownorm(W + s_i B_i A_i), computed here once in float64 (the weights are frozen), so
// adapter i's output is scaled by t_i = g_i g_(i+1) ... (g = 1 for plain LoRA) and x W^T by
// dot_scale = g_1 g_2 ... Equal to PEFT's recurrence over adapters up to float32 rounding.
template <class Base>
HostLayer host_layer(const LoraLayer<Base>& layer, const std::vector<std::string>& names) {
  HostLayer l = host_base(layer.base());
  l.activations = activations_for(layer.compute_dtype());
  const int out = l.out_features;
  // t[k] = g_k g_(k+1) ...: the product of the DoRA factors from adapter k on.
  std::vector<Vector> t(names.size(), Vector::Ones(out));
  std::optional<Matrix> w;  // the dequantized base, for DoRA only (it is large)
  int rank = 0;
  for (std::size_t k = names.size(); k-- > 0;) {
    const LoraAdapter& a = layer.adapter(names[k]);
    rank += static_cast<int>(a.a().rows());
    if (k + 1 < names.size()) t[k] = t[k + 1];
    if (a.config().use_dora) {
      if (!w) w = layer.base().weight();
      t[k] = t[k].cwiseProduct(layer.dora_scale(a, *w));
    }
  }
  l.lora_b.assign(static_cast<std::size_t>(out) * rank, 0.0f);
  Vector bias = Vector::Zero(out);
  bool any_bias = false;
  int r0 = 0;
  for (std::size_t k = 0; k < names.size(); ++k) {
    const LoraAdapter& a = layer.adapter(names[k]);
    const Vector s = a.scaling() * t[k];
    const std::vector<float> a_rows = to_floats(a.a());
    l.lora_a.insert(l.lora_a.end(), a_rows.begin(), a_rows.end());
    for (int o = 0; o < out; ++o)
      for (Eigen::Index r = 0; r < a.b().cols(); ++r)
        l.lora_b[static_cast<std::size_t>(o) * rank + r0 + r] = static_cast<float>(s(o) * a.b()(o, r));
    if (a.b_bias()) {
      any_bias = true;
      bias += s.cwiseProduct(*a.b_bias());
    }
    r0 += static_cast<int>(a.a().rows());
  }
  if (any_bias) l.lora_bias = to_floats(bias);
  if (w) l.dot_scale = to_floats(t.front());
  l.rank = rank;
  l.scaling = 1.0f;
  return l;
}

// One adapter, or the layer's active adapters.
template <class Layer>
HostLayer host_layer(const Layer& layer, const std::string& adapter) {
  return host_layer(layer, std::vector<std::string>{adapter});
}
template <class Layer>
HostLayer host_layer(const Layer& layer) {
  return host_layer(layer, layer.active_adapters());
}

}  // namespace qoracle::optimized
