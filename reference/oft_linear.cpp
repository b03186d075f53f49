#include "reference/oft_linear.hpp"

#include "reference/skew.hpp"

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
void OftLayer<Base>::set_adapter_dtype(const std::string& name, Dtype dtype) {
  (void)adapters_.get(name);
  adapter_dtypes_[name] = dtype;
}

template <class Base>
Dtype OftLayer<Base>::adapter_dtype(const std::string& name) const {
  if (dtype_ == Dtype::Float64) return Dtype::Float64;  // the exact math rounds nothing
  const auto it = adapter_dtypes_.find(name);
  return it == adapter_dtypes_.end() ? Dtype::Float32 : it->second;
}

template <class Base>
Matrix OftLayer<Base>::rotation(const std::string& name) const {
  const OftAdapter& a = adapters_.get(name);
  const Dtype d = adapter_dtype(name);
  const bool sixteen_bit = d == Dtype::Float16 || d == Dtype::BFloat16;
  // A 16-bit adapter's exact path solves in float32 and casts R back to the adapter dtype, but
  // PEFT sums its Cayley-Neumann series in that dtype, rounding every product and sum.
  if (!(sixteen_bit && a.config().use_cayley_neumann && convention_ == Convention::Peft))
    return round_to(d, a.rotation_matrix());
  const OftBlocks& blocks = a.blocks();
  const std::vector<double> c = neumann_coefficients(a.config().num_cayley_neumann_terms, convention_, neumann_series_);
  const Matrix w = a.effective_weight();
  const int b = blocks.block_size;
  Matrix r = Matrix::Zero(static_cast<Eigen::Index>(blocks.r) * b, static_cast<Eigen::Index>(blocks.r) * b);
  for (int j = 0; j < blocks.r; ++j) {
    const int row = a.config().block_share ? 0 : j;
    r.block(j * b, j * b, b, b) = cayley_polynomial_rounded(skew_from_params(w.row(row).transpose(), b), c, d);
  }
  return r;
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
  for (const auto& name : adapters_.active())  // float64: block by block (R_bd is never formed)
    z = dtype_ == Dtype::Float64 ? adapters_.get(name).rotate(z) : Matrix(z * rotation(name));
  // PEFT casts the rotated activations back to the input dtype before the base layer.
  z = round_to(dtype_, z);
  require_finite_result(z, "forward: the rotated activations x R in " + std::string(dtype_name(dtype_)));
  Matrix y = base_.forward(z, dtype_);
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
  dense.adapter_dtypes_ = adapter_dtypes_;
  dense.unmerge_multiplies_by_rotation_ = unmerge_multiplies_by_rotation_;
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
    Matrix merged;
    if (dtype_ == Dtype::Float64) {  // W (R_a1 R_a2 ...)^T = W ... R_a2^T R_a1^T, block by block
      merged = base_.weight();
      for (auto it = todo.rbegin(); it != todo.rend(); ++it) merged = adapters_.get(*it).rotate_transposed(merged);
    } else {
      Matrix composed = Matrix::Identity(n, n);
      for (const auto& name : todo) composed = composed * rotation(name);
      merged = base_.weight() * composed.transpose();
    }
    require_finite_result(merged, "merge of adapters into base.weight (weights left unchanged)");
    replace_weight(merged);
  } else {
    // PEFT writes each adapter's merge back before the next one (and requantizes each time).
    Base before = base_;
    for (const auto& name : todo) {
      const Matrix merged = dtype_ == Dtype::Float64 ? adapters_.get(name).rotate_transposed(base_.weight())
                                                     : Matrix(base_.weight() * rotation(name).transpose());
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
    Matrix w;
    if (dtype_ == Dtype::Float64) {  // W' C^-T = W' R_a1^-T R_a2^-T ..., block by block
      w = base_.weight();
      for (const auto& name : adapters_.merged) w = adapters_.get(name).unrotate_transposed(w);
    } else {
      const int n = base_.in_features();
      Matrix composed = Matrix::Identity(n, n);
      for (const auto& name : adapters_.merged) composed = composed * rotation(name);
      w = composed.partialPivLu().solve(base_.weight().transpose()).transpose();
    }
    require_finite_result(w, "unmerge (weights left unchanged)");
    replace_weight(w);
  } else {
    // PEFT pops the last merged adapter first and casts R to float32 for torch.linalg.inv, even
    // for float64 weights; inverting the float32 R in double and rounding the inverse to float32
    // matches it to a few float32 ulps.
    // The product runs in the adapter dtype (W cast to it, the inverse cast back to it).
    // PEFT 0.17 multiplies by R itself.
    for (auto it = adapters_.merged.rbegin(); it != adapters_.merged.rend(); ++it) {
      const Dtype ad = adapter_dtype(*it);
      const Matrix r = rotation(*it);
      const Matrix undo = unmerge_multiplies_by_rotation_
                              ? Matrix(r.transpose())
                              : round_to(ad, Matrix(round_to(Dtype::Float32, Matrix(round_to(Dtype::Float32, r).inverse()))));
      const Matrix w = round_to(ad, Matrix(round_to(ad, base_.weight()) * undo.transpose()));
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
