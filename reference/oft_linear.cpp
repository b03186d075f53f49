#include "reference/oft_linear.hpp"

namespace qoracle {

template <class Base>
void OftLayer<Base>::add_adapter(const std::string& name, const OftConfig& config, Matrix weight) {
  try {
    OftAdapter adapter(base_.in_features(), config, std::move(weight), convention_);
    adapter.set_peft_neumann_series(neumann_series_);
    adapters_.add(name, std::move(adapter));
  } catch (const Error& e) {
    throw e.within("adapter '" + name + "'");
  }
}

template <class Base>
Matrix OftLayer<Base>::rotation(const std::string& name) const {
  const Matrix r = adapters_.get(name).rotation_matrix();
  return dtype_ == Dtype::Float64 ? r : round_to(Dtype::Float32, r);
}

template <class Base>
Matrix OftLayer<Base>::weight_after_forward(const std::string& name) const {
  const OftAdapter& a = adapters_.get(name);
  return convention_ == Convention::Peft ? a.effective_weight() : a.weight();
}

template <class Base>
Matrix OftLayer<Base>::forward(const Matrix& x) const {
  require_input(x, base_.in_features());
  if (!adapters_.merged.empty()) return base_.forward(x, dtype_);
  Matrix z = x;
  for (const auto& name : adapters_.active()) z = z * rotation(name);
  // PEFT casts the rotated activations back to the input dtype before the base layer.
  Matrix y = base_.forward(round_to(dtype_, z), dtype_);
  require_finite_result(y, "forward");
  return y;
}

template <class Base>
Matrix OftLayer<Base>::forward_disabled(const Matrix& x) {
  if (!adapters_.merged.empty()) unmerge();
  return base_.forward(x, dtype_);
}

template <class Base>
void OftLayer<Base>::replace_weight(const Matrix& w) {
  // PEFT casts the merged weight to the layer's dtype before writing it back, also when the
  // base requantizes it (set_base_weight(w.to(orig_dtype))).
  base_.set_weight(round_to(dtype_, w), dtype_);
  if (convention_ == Convention::Peft && Base::peft_quirks.merge_drops_bias) base_.set_bias(std::nullopt);
}

template <class Base>
OftLayer<DenseLinear> OftLayer<Base>::dequantized() const {
  OftLayer<DenseLinear> dense(base_.dequantized(), convention_);
  dense.adapters_ = adapters_;
  dense.dtype_ = dtype_;
  return dense;
}

template <class Base>
void OftLayer<Base>::merge(const std::vector<std::string>& names) {
  // Refused before anything changes (PEFT raises only after its merge bookkeeping has begun).
  if constexpr (Base::no_merge != nullptr) throw Error(std::string("merge: ") + Base::no_merge);
  const auto todo = adapters_.to_merge(names);
  if (todo.empty()) return;
  const int n = base_.in_features();
  if (convention_ == Convention::Math) {
    Matrix composed = Matrix::Identity(n, n);
    for (const auto& name : todo) composed = composed * rotation(name);
    const Matrix merged = base_.weight() * composed.transpose();
    require_finite_result(merged, "merge of adapters into base.weight (weights left unchanged)");
    replace_weight(merged);
  } else {
    // PEFT writes each adapter's merge back before the next one (and requantizes each time).
    Base before = base_;
    for (const auto& name : todo) {
      const Matrix merged = base_.weight() * rotation(name).transpose();
      if (!merged.allFinite()) {
        base_ = std::move(before);
        require_finite_result(merged, "merge of adapter '" + name + "' into base.weight (weights left unchanged)");
      }
      replace_weight(merged);
    }
  }
  adapters_.merged.insert(adapters_.merged.end(), todo.begin(), todo.end());
}

template <class Base>
void OftLayer<Base>::unmerge() {
  if (adapters_.merged.empty()) return;
  if (convention_ == Convention::Math) {
    // W' = W C^T with C = R_a1 R_a2 ... (merge order), so W^T = C^-1 W'^T.
    const int n = base_.in_features();
    Matrix composed = Matrix::Identity(n, n);
    for (const auto& name : adapters_.merged) composed = composed * rotation(name);
    const Matrix w = composed.partialPivLu().solve(base_.weight().transpose()).transpose();
    require_finite_result(w, "unmerge (weights left unchanged)");
    replace_weight(w);
  } else {
    // PEFT pops the last merged adapter first and casts R to float32 for torch.linalg.inv, even
    // for float64 weights; inverting the float32 R in double and rounding the inverse to float32
    // matches it to a few float32 ulps.
    for (auto it = adapters_.merged.rbegin(); it != adapters_.merged.rend(); ++it) {
      const Matrix r32 = round_to(Dtype::Float32, rotation(*it));
      const Matrix inv32 = round_to(Dtype::Float32, Matrix(r32.inverse()));
      const Matrix w = base_.weight() * inv32.transpose();
      require_finite_result(w, "unmerge");
      replace_weight(w);
    }
  }
  adapters_.merged.clear();
}

template class OftLayer<DenseLinear>;
template class OftLayer<HqqLinear>;
template class OftLayer<AqlmLinear>;
template class OftLayer<EetqLinear>;

}  // namespace qoracle
