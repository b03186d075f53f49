#pragma once
// LoRA (and DoRA) on a base linear layer (PEFT's lora.Linear, HqqLoraLinear, ...).
#include <optional>
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
#include "reference/lora_adapter.hpp"

namespace qoracle {

// An adapter as a layer holds it (shared by every base type, so dequantized() can copy them).
struct LoraEntry {
  LoraAdapter adapter;
  Vector dora_scale_at_merge;  // g cached by merge, as PEFT caches the weight norm
  // The parameters' dtype where it is not the default (float32 beside a low-precision base):
  // PEFT 0.18's add_adapter left an adapter of a 16-bit model in that dtype.
  std::optional<Dtype> dtype;
};

template <class Base>
class LoraLayer {
 public:
  explicit LoraLayer(Base base, Convention convention = Convention::Math)
      : base_(std::move(base)), convention_(convention) {}

  // For DoRA without a magnitude, m is initialised as PEFT does: the row norms of W + s B A.
  void add_adapter(const std::string& name, const LoraConfig& config, Matrix a, Matrix b,
                   std::optional<Vector> b_bias = std::nullopt, std::optional<Vector> magnitude = std::nullopt);
  void set_active_adapters(std::vector<std::string> names) { adapters_.set_active(std::move(names)); }
  const LoraAdapter& adapter(const std::string& name) const { return adapters_.get(name).adapter; }
  const std::vector<std::string>& active_adapters() const { return adapters_.active(); }
  Convention convention() const { return convention_; }
  Dtype compute_dtype() const { return dtype_; }

  // y = x W^T + b + sum over active adapters of s (x A^T B^T + b_B); DoRA adapters add
  // (g - 1) (y - b) + g s x A^T B^T, y the result so far (so g also scales the adapters before
  // it, as in PEFT), with g = m / rownorm(W + s B A) on the unmerged W.
  Matrix forward(const Matrix& x) const;
  Matrix forward_disabled(const Matrix& x);
  // s B A as PEFT holds it: rounded to a 16-bit adapter's dtype (exact otherwise).
  Matrix delta_weight(const std::string& name) const { return delta_of(adapters_.get(name)); }
  // PEFT's DoRA multiplies by a [1, out] factor, so in the PEFT convention a 1-D input comes back
  // as [1, out] while an unmerged DoRA adapter is active (the values are the same).
  bool forward_adds_leading_dimension() const;

  // W += s B A (DoRA: W = g (W + s B A)); with lora_bias, b += s b_B (the base must have a bias).
  // A quantized base is requantized; where PEFT drops the bias doing so, Peft does too.
  void merge(const std::vector<std::string>& names);
  void unmerge();  // by subtraction, last merged first (DoRA: W = W'/g - s B A with the cached g)

  const Base& base() const { return base_; }
  // For stage-wise judging: the caller may put the producer's own merged state in place before
  // the unmerge, so that each stage is judged on the previous stage's actual output.
  Base& mutable_base() { return base_; }
  // Beyond PEFT, for export: the same adapters on the dequantized base, as a dense layer that can
  // be merged (AQLM and EETQ refuse merges; PEFT offers no way out).
  LoraLayer<DenseLinear> dequantized() const;
  const std::vector<std::string>& merged_adapters() const { return adapters_.merged; }
  // DoRA's g = m / rownorm(W + s B A) for a weight W (the base's, unmerged).
  Vector dora_scale(const LoraAdapter& adapter, const Matrix& weight) const;

  // Deployment-dtype emulation (see OftLayer): the base output is rounded, the float32 adapter
  // output is added in float32 and the sum rounded (PEFT's vanilla Linear); merges round the
  // written weights, and unmerge subtracts the delta rounded to the weight dtype.
  void set_compute_dtype(Dtype dtype) { dtype_ = dtype; }
  // An adapter's parameter dtype (default: float32 beside a low-precision base, as PEFT autocasts
  // them). A 16-bit adapter rounds where PEFT's 16-bit modules do: after A, after B, after the
  // scaling, and its delta weight. DoRA with 16-bit adapters is refused (not emulated).
  void set_adapter_dtype(const std::string& name, Dtype dtype);
  // The dtype an adapter computes in: float64 when the layer computes the exact math.
  Dtype adapter_dtype(const std::string& name) const { return adapter_dtype_of(adapters_.get(name)); }
  // PEFT before 0.21 (reports/peft-deviations.md D12): merging several DoRA adapters, each takes
  // its weight norm on the weight as merged so far, so the merged forward differs from the unmerged.
  void set_dora_norms_on_merged_weight(bool on) { dora_norms_on_merged_weight_ = on; }

 private:
  using Entry = LoraEntry;
  // Writes w (and the bias) back: either completes or throws with the base unchanged.
  void replace(Matrix w, std::optional<Vector> bias);
  Dtype adapter_dtype_of(const Entry& e) const;
  // The scaling as PEFT multiplies by it: a Python float meeting a float32 or 16-bit tensor is
  // rounded to float32 first (torch's opmath); a float64 tensor keeps the double.
  double scaling_of(const Entry& e) const;
  Matrix delta_of(const Entry& e) const;
  std::optional<Vector> delta_bias_of(const Entry& e) const;
  // B(A(x)) + b_B in a 16-bit adapter's dtype, or rounded once to the result dtype (the AQLM/EETQ
  // quirk); then scaled, and rounded again: the adapters' share of the output as PEFT adds it.
  Matrix rounded_output(const Entry& e, const Matrix& x) const;
  // PEFT casts a DoRA-merged or -unmerged weight back to the compute dtype (.to(orig_dtype)),
  // also before requantizing; plain LoRA requantizes its float32 sum as is.
  void cast_as_written(const Entry& e, Matrix& w) const;
  // w <- g (w + s B A) for DoRA (g its factor), w + s B A otherwise. In float64 in place, with
  // one rank-r dgemm on every core; emulated dtypes add delta_of(e) as PEFT rounds it.
  void merge_into(const Entry& e, const Vector& g, Matrix& w) const;
  // Its inverse with the factor cached at merge: w <- w / g - s B A; round_delta rounds s B A to
  // the weight dtype first (PEFT's plain LoRA unmerge).
  void unmerge_from(const Entry& e, Matrix& w, bool round_delta) const;
  // Whether merging `todo` writes the base once, at the end (then the working copy of W keeps a
  // merge that throws from changing the layer, and no backup is needed).
  bool writes_base_once(const std::vector<std::string>& todo) const;
  // w less the merged adapters' deltas, exactly (no requantization): the base the forward sees.
  Matrix without_merged_adapters(Matrix w) const;
  void merge_at_once(const std::vector<std::string>& todo);
  void merge_one(const std::string& name);
  Matrix unmerged_base();
  std::optional<Vector> merged_bias(const std::string& name, std::optional<Vector> bias) const;

  Base base_;
  Convention convention_;
  AdapterRegistry<Entry> adapters_;
  Dtype dtype_ = Dtype::Float64;
  bool dora_norms_on_merged_weight_ = false;
  std::optional<Matrix> unmerged_cache_;  // set while unmerged_base replays the merged adapters

  template <class> friend class LoraLayer;

  // ---- training: the forward with recorded dropout noise and the float64 backward ----
  // (reference/lora_backward.cpp; spec training.md §2, §3, §5, §7)
 public:
  // forward() in float64 with each adapter's dropout noise (an adapter without noise sees x).
  // DoRA with noise is PEFT's dropout variant (T5): y += (g - 1)(x_d W^T) + g s x_d A^T B^T, so
  // it does not rescale the adapters before it. Without noise it is forward() in float64.
  Matrix forward_training(const Matrix& x, const DropoutNoise& noise) const;
  // dL/dx and each active adapter's parameter gradients for L = sum(G ⊙ forward_training(x)),
  // in float64 whatever the compute dtype. Peft: DoRA's weight norm is detached (T1); Math: the
  // exact gradient with the norm's radial term. Merged adapters take no gradient (zeros marked
  // peft_grad_none; dL/dx = G W_merged). Throws Error for noise of a wrong shape or for an
  // adapter that is not active, and where the base's PEFT-convention backward is refused.
  LayerGradients backward(const Matrix& x, const Matrix& grad_output, const DropoutNoise& noise, bool training) const;
};

using LoraLinear = LoraLayer<DenseLinear>;
using HqqLoraLinear = LoraLayer<HqqLinear>;
using AqlmLoraLinear = LoraLayer<AqlmLinear>;
using EetqLoraLinear = LoraLayer<EetqLinear>;

}  // namespace qoracle
