#pragma once
// OFT on a base linear layer (PEFT's oft.Linear, HqqOFTLinear, ...): forward, adapters disabled,
// merge, unmerge. Base is DenseLinear or a quantized layer (HqqLinear, ...).
#include <string>
#include <vector>

#include "reference/adapter_registry.hpp"
#include "reference/aqlm_linear.hpp"
#include "reference/convention.hpp"
#include "reference/dense_linear.hpp"
#include "reference/dtype.hpp"
#include "reference/eetq_linear.hpp"
#include "reference/hqq_linear.hpp"
#include "reference/layer_gradients.hpp"
#include "reference/oft_adapter.hpp"

namespace qoracle {

template <class Base>
class OftLayer {
 public:
  OftLayer(Base base, Convention convention) : base_(std::move(base)), convention_(convention) {}

  void add_adapter(const std::string& name, const OftConfig& config, Matrix weight);
  void set_active_adapters(std::vector<std::string> names) { adapters_.set_active(std::move(names)); }
  const OftAdapter& adapter(const std::string& name) const { return adapters_.get(name); }
  const std::vector<std::string>& active_adapters() const { return adapters_.active(); }
  Convention convention() const { return convention_; }
  Dtype compute_dtype() const { return dtype_; }

  // Unmerged: x * R_a1 * R_a2 ... (active order), then the base. Merged: the merged base alone.
  Matrix forward(const Matrix& x) const;
  // PEFT unmerges first when merged, then runs the base.
  Matrix forward_disabled(const Matrix& x);
  Matrix delta_weight(const std::string& name) const { return rotation(name); }
  // The adapter's parameter after a forward. PEFT's COFT writes the projection back into the
  // parameter (spec Q5); mathematically the projection is part of the map, not a state change.
  Matrix weight_after_forward(const std::string& name) const;

  // Math: W' = W (R_a1 R_a2 ...)^T, so the merged forward equals the unmerged one.
  // Peft: W' = W R_a1^T R_a2^T ..., i.e. x R_a2 R_a1 for two adapters (reversed); a quantized
  // base is requantized after each adapter and, where PEFT does so, loses its bias.
  // Atomic: on non-finite merged weights it throws and leaves the weights unchanged.
  void merge(const std::vector<std::string>& names);
  // Math: the exact inverse in double. Peft: inverts each R in float32, as PEFT does even for
  // float64 weights (round trip ~1e-7). (PEFT <= 0.19's HqqOFTLinear.unmerge multiplied by R
  // instead, but its merge always raised, so that path was unreachable.)
  void unmerge();

  const Base& base() const { return base_; }
  // Beyond PEFT, for export: the same adapters on the dequantized base, as a dense layer that can
  // be merged (AQLM and EETQ refuse merges; PEFT offers no way out).
  OftLayer<DenseLinear> dequantized() const;
  const std::vector<std::string>& merged_adapters() const { return adapters_.merged; }

  // Deployment-dtype emulation: the layer's weights and activations are `dtype` and the
  // adapters float32, as PEFT keeps them; results are rounded where PEFT rounds (the rotated
  // activations before the base matmul, the output, merged weights). Float64 rounds nothing.
  void set_compute_dtype(Dtype dtype) { dtype_ = dtype; }

 private:
  Matrix rotation(const std::string& name) const;  // R_bd as PEFT holds it (float32 adapters)
  void replace_weight(const Matrix& w);             // write back a merged weight, with PEFT's quirks

  Base base_;
  Convention convention_;
  AdapterRegistry<OftAdapter> adapters_;
  Dtype dtype_ = Dtype::Float64;

  template <class> friend class OftLayer;

  // ---- training: the release's Neumann series and the float64 backward ----
  // (reference/oft_backward.cpp; spec training.md §4, §5)
 public:
  // PEFT's Cayley-Neumann series of the producing release (peft_release.hpp), for the adapters
  // added before and after this call.
  void set_peft_neumann_series(PeftNeumannSeries series);
  // dL/dx and each active adapter's dL/dweight for L = sum(G ⊙ forward(x)), in float64 whatever
  // the compute dtype. Merged adapters take no gradient (PEFT's merged forward never reads
  // them): zeros marked peft_grad_none, and dL/dx = G W_merged. Throws Error where the base's
  // PEFT-convention backward is refused (base_backward.hpp).
  LayerGradients backward(const Matrix& x, const Matrix& grad_output, bool training) const;

 private:
  PeftNeumannSeries neumann_series_ = PeftNeumannSeries::TrailingOne;
};

using OftLinear = OftLayer<DenseLinear>;
using HqqOftLinear = OftLayer<HqqLinear>;
using AqlmOftLinear = OftLayer<AqlmLinear>;
using EetqOftLinear = OftLayer<EetqLinear>;

}  // namespace qoracle
