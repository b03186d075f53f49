#include "reference/lora_linear.hpp"

#include <algorithm>
#include <type_traits>

#include "reference/float64_products.hpp"

namespace qoracle {

template <class Base>
void LoraLayer<Base>::add_adapter(const std::string& name, const LoraConfig& config, Matrix a, Matrix b,
                                  std::optional<Vector> b_bias, std::optional<Vector> magnitude) {
  try {
    if (config.use_dora && Base::no_dora != nullptr) throw Error(std::string("use_dora: ") + Base::no_dora);
    LoraAdapter adapter(base_.in_features(), base_.out_features(), config, std::move(a), std::move(b),
                        std::move(b_bias), std::move(magnitude));
    if (config.use_dora && !adapter.magnitude())
      adapter.set_magnitude((base_.weight() + adapter.delta_weight()).rowwise().norm());
    adapters_.add(name, Entry{std::move(adapter), Vector(), std::nullopt});
  } catch (const Error& e) {
    throw e.within("adapter '" + name + "'");
  }
}

template <class Base>
Vector LoraLayer<Base>::dora_scale(const LoraAdapter& adapter, const Matrix& weight) const {
  // float64: the row norms of W + s B A panel by panel on every core, without an (out, in)
  // temporary; the emulated dtypes keep Eigen's sum, as their fixtures pin it.
  const Vector norms = dtype_ == Dtype::Float64 ? row_norms_of_sum(weight, adapter.scaling(), adapter.b(), adapter.a())
                                                : Vector((weight + adapter.delta_weight()).rowwise().norm());
  return adapter.magnitude()->cwiseQuotient(norms);
}

template <class Base>
void LoraLayer<Base>::set_adapter_dtype(const std::string& name, Dtype dtype) {
  Entry& e = adapters_.get(name);
  if ((dtype == Dtype::Float16 || dtype == Dtype::BFloat16) && e.adapter.config().use_dora)
    throw Error("adapter '" + name + "': DoRA with " + dtype_name(dtype) +
                " parameters is not emulated (PEFT's DoRA rounds its norms in that dtype); expected float32 or float64");
  e.dtype = dtype;
}

template <class Base>
Dtype LoraLayer<Base>::adapter_dtype_of(const Entry& e) const {
  if (dtype_ == Dtype::Float64) return Dtype::Float64;  // the exact math rounds nothing
  return e.dtype.value_or(Dtype::Float32);
}

template <class Base>
double LoraLayer<Base>::scaling_of(const Entry& e) const {
  const double s = e.adapter.scaling();
  return adapter_dtype_of(e) == Dtype::Float64 ? s : round_to(Dtype::Float32, s);
}

namespace {
bool sixteen_bit(Dtype d) { return d == Dtype::Float16 || d == Dtype::BFloat16; }
}  // namespace

template <class Base>
Matrix LoraLayer<Base>::delta_of(const Entry& e) const {
  const Dtype d = adapter_dtype_of(e);
  if (!sixteen_bit(d)) return e.adapter.delta_weight();
  // On the CPU PEFT computes a 16-bit delta in float32 and casts it back (get_delta_weight).
  return round_to(d, Matrix(scaling_of(e) * round_to(Dtype::Float32, Matrix(e.adapter.b() * e.adapter.a()))));
}

template <class Base>
std::optional<Vector> LoraLayer<Base>::delta_bias_of(const Entry& e) const {
  const Dtype d = adapter_dtype_of(e);
  if (!sixteen_bit(d) || !e.adapter.b_bias()) return e.adapter.delta_bias();
  return round_to(d, Vector(scaling_of(e) * *e.adapter.b_bias()));  // lora_B.bias * scaling
}

template <class Base>
Matrix LoraLayer<Base>::rounded_output(const Entry& e, const Matrix& x) const {
  const Dtype d = adapter_dtype_of(e);
  const LoraAdapter& a = e.adapter;
  Matrix unscaled;
  if (sixteen_bit(d)) {  // lora_A, then lora_B (with its bias), each rounding to d
    unscaled = round_to(d, Matrix(round_to(d, Matrix(x * a.a().transpose())) * a.b().transpose()));
    if (a.b_bias()) unscaled = round_to(d, Matrix(unscaled.rowwise() + a.b_bias()->transpose()));
  } else {  // float32 adapters whose output PEFT casts to the result dtype before scaling
    unscaled = round_to(dtype_, a.unscaled_output(x));
  }
  return round_to(sixteen_bit(d) ? d : dtype_, Matrix(scaling_of(e) * unscaled));
}

template <class Base>
void LoraLayer<Base>::cast_as_written(const Entry& e, Matrix& w) const {
  // (Rounding to float64 changes nothing, and would copy W.)
  if (convention_ == Convention::Peft && e.adapter.config().use_dora && dtype_ != Dtype::Float64) w = round_to(dtype_, w);
}

template <class Base>
bool LoraLayer<Base>::forward_adds_leading_dimension() const {
  if (convention_ != Convention::Peft || !adapters_.merged.empty()) return false;
  return std::any_of(adapters_.active().begin(), adapters_.active().end(),
                     [&](const std::string& n) { return adapters_.get(n).adapter.config().use_dora; });
}

template <class Base>
Matrix LoraLayer<Base>::forward(const Matrix& x) const {
  require_input(x, base_.in_features());
  Matrix y = base_.forward(x, dtype_);
  if (!adapters_.merged.empty()) return y;
  std::optional<Matrix> w;  // the unmerged weight, dequantized only where a DoRA adapter needs it
  for (const auto& name : adapters_.active()) {
    const Entry& e = adapters_.get(name);
    const LoraAdapter& a = e.adapter;
    if (a.config().use_dora) {
      // PEFT's DoRA scales the result so far less the base bias, so g also scales the adapters
      // before this one: y += (g - 1)(y - b) + g s x A^T B^T, with g on the unmerged W.
      if (!w) w = base_.weight();
      const Vector g = dora_scale(a, *w);
      Matrix so_far = y;
      if (base_.bias()) so_far.rowwise() -= base_.bias()->transpose();
      y += (so_far + a.output(x)) * g.asDiagonal() - so_far;
    } else if (sixteen_bit(adapter_dtype_of(e)) ||
               (Base::peft_quirks.lora_rounds_before_scaling && dtype_ != Dtype::Float64)) {
      // out = B(A(x)) in 16 bits (a 16-bit adapter, or .to(result dtype)); out = out * s;
      // result += out: each step rounds.
      y = round_to(dtype_, Matrix(y + rounded_output(e, x)));
    } else {
      y += dtype_ == Dtype::Float64 ? a.output_float64(x) : a.output(x);  // float64: OpenBLAS
    }
    if (Base::peft_quirks.lora_rounds_after_each_adapter) y = round_to(dtype_, y);
  }
  y = round_to(dtype_, y);
  require_finite_result(y, "forward");
  return y;
}

template <class Base>
Matrix LoraLayer<Base>::forward_disabled(const Matrix& x) {
  if (!adapters_.merged.empty()) unmerge();
  return base_.forward(x, dtype_);
}

template <class Base>
void LoraLayer<Base>::replace(Matrix w, std::optional<Vector> bias) {
  if (convention_ == Convention::Peft && Base::peft_quirks.merge_drops_bias) bias.reset();
  if constexpr (std::is_same_v<Base, DenseLinear>) {
    if (dtype_ == Dtype::Float64) {  // rounding to float64 changes nothing: W moves in, uncopied
      base_ = DenseLinear(std::move(w), std::move(bias));
      return;
    }
  }
  base_.set_weight(w, dtype_);  // rounds to the weight dtype, or requantizes (or throws, unchanged)
  base_.set_bias(std::move(bias));
}

template <class Base>
LoraLayer<DenseLinear> LoraLayer<Base>::dequantized() const {
  LoraLayer<DenseLinear> dense(base_.dequantized(), convention_);
  dense.adapters_ = adapters_;
  dense.dtype_ = dtype_;
  dense.dora_norms_on_merged_weight_ = dora_norms_on_merged_weight_;
  return dense;
}

template <class Base>
void LoraLayer<Base>::merge(const std::vector<std::string>& names) {
  // Refused before anything changes (PEFT raises only after its merge bookkeeping has begun).
  if constexpr (Base::no_merge != nullptr) throw Error(std::string("merge: ") + Base::no_merge);
  const auto todo = adapters_.to_merge(names);
  if (todo.empty()) return;
  // A merge that throws leaves the layer unchanged. Where the base is written once, at the end,
  // the merge works on its own copy of W until replace(), which completes or throws with the base
  // unchanged: no backup of the base (at 4096 x 4096 a dense one is 128 MiB). Otherwise (PEFT's
  // adapter-by-adapter write-back, DoRA's replay of the merged adapters) the base is restored.
  std::optional<Base> before;
  if (!writes_base_once(todo)) before = base_;
  const AdapterRegistry<Entry> adapters_before = adapters_;  // merged list and cached DoRA scales
  try {
    if (convention_ == Convention::Peft) {
      // PEFT writes each adapter back (and requantizes a quantized base) before the next.
      for (const auto& name : todo) merge_one(name);
    } else {
      merge_at_once(todo);
    }
  } catch (const Error&) {
    if (before) base_ = std::move(*before);
    adapters_ = adapters_before;
    throw;
  }
}

template <class Base>
bool LoraLayer<Base>::writes_base_once(const std::vector<std::string>& todo) const {
  if (convention_ == Convention::Math) return true;  // merge_at_once
  if (todo.size() != 1) return false;                // PEFT writes each adapter back
  // DoRA's g on the unmerged base: unmerged_base() unmerges and re-merges the merged adapters.
  return !adapters_.get(todo.front()).adapter.config().use_dora || dora_norms_on_merged_weight_ ||
         adapters_.merged.empty();
}

template <class Base>
std::optional<Vector> LoraLayer<Base>::merged_bias(const std::string& name, std::optional<Vector> bias) const {
  if (const auto db = delta_bias_of(adapters_.get(name))) {
    if (!bias)
      throw Error("merge of adapter '" + name + "': lora_bias needs a base bias to merge into, and base.bias is absent");
    *bias = round_to(dtype_, Vector(*bias + *db));
    require_finite_result(*bias, "merge of lora_bias into base.bias (weights left unchanged)");
  }
  return bias;
}

// Math: all deltas applied exactly and written back once; DoRA's g on the weight without any
// adapter merged, as the forward takes it.
template <class Base>
void LoraLayer<Base>::merge_at_once(const std::vector<std::string>& todo) {
  auto is_dora = [&](const std::string& n) { return adapters_.get(n).adapter.config().use_dora; };
  std::vector<Vector> scales(todo.size());  // DoRA's g, all on the same unmerged weight
  if (std::any_of(todo.begin(), todo.end(), is_dora)) {
    auto scales_on = [&](const Matrix& unmerged) {
      for (std::size_t i = 0; i < todo.size(); ++i)
        if (is_dora(todo[i])) scales[i] = dora_scale(adapters_.get(todo[i]).adapter, unmerged);
    };
    if (adapters_.merged.empty())
      scales_on(base_.weight());  // W itself, uncopied
    else
      scales_on(without_merged_adapters(base_.weight()));
  }
  Matrix w = base_.weight();  // the working copy: the base is written once, below
  std::optional<Vector> bias = base_.bias();
  for (std::size_t i = 0; i < todo.size(); ++i) {
    const std::string& name = todo[i];
    merge_into(adapters_.get(name), scales[i], w);
    bias = merged_bias(name, std::move(bias));
    require_finite_result(w, "merge of adapter '" + name + "' into base.weight (weights left unchanged)");
  }
  replace(std::move(w), std::move(bias));
  for (std::size_t i = 0; i < todo.size(); ++i) {
    adapters_.get(todo[i]).dora_scale_at_merge = scales[i];
    adapters_.merged.push_back(todo[i]);
  }
}

// Peft: one adapter written back. DoRA's g is taken on the unmerged base (PEFT >= 0.21), or on
// the weight as merged so far (before 0.21, D12).
template <class Base>
void LoraLayer<Base>::merge_one(const std::string& name) {
  const Entry& e = adapters_.get(name);
  Vector g;
  if (e.adapter.config().use_dora) {
    // With no adapter merged (and outside a replay) the unmerged base is W itself: not copied.
    const bool on_weight = dora_norms_on_merged_weight_ || (adapters_.merged.empty() && !unmerged_cache_);
    g = on_weight ? dora_scale(e.adapter, base_.weight()) : dora_scale(e.adapter, unmerged_base());
  }
  Matrix w = base_.weight();  // the weight after any replay: the working copy
  merge_into(e, g, w);
  cast_as_written(e, w);
  // A merge that rebuilds the base without its bias (HQQ) ignores lora_bias too: PEFT refuses
  // lora_bias on HQQ in get_peft_model, but add_adapter lets it through (H8).
  std::optional<Vector> bias = Base::peft_quirks.merge_drops_bias ? std::nullopt : merged_bias(name, base_.bias());
  require_finite_result(w, "merge of adapter '" + name + "' into base.weight (weights left unchanged)");
  replace(std::move(w), std::move(bias));
  adapters_.get(name).dora_scale_at_merge = g;
  adapters_.merged.push_back(name);
}

// PEFT 0.21's _unmerged_base_weight: with adapters merged, it unmerges them (requantizing a
// quantized base), keeps that weight while it merges them again one by one (their DoRA norms taken
// on it too), and returns it. Merging the new adapter then starts from the re-merged weight.
template <class Base>
Matrix LoraLayer<Base>::unmerged_base() {
  if (unmerged_cache_) return *unmerged_cache_;
  if (adapters_.merged.empty()) return base_.weight();
  const std::vector<std::string> replay = adapters_.merged;
  unmerge();
  const Matrix unmerged = base_.weight();
  unmerged_cache_ = unmerged;
  try {
    for (const auto& name : replay) merge_one(name);
  } catch (const Error&) {
    unmerged_cache_.reset();
    throw;
  }
  unmerged_cache_.reset();
  return unmerged;
}

template <class Base>
void LoraLayer<Base>::merge_into(const Entry& e, const Vector& g, Matrix& w) const {
  const bool dora = e.adapter.config().use_dora;
  if (dtype_ == Dtype::Float64) {  // the exact math, in place: no delta or sum temporaries
    add_scaled_product(w, e.adapter.scaling(), e.adapter.b(), e.adapter.a());
    if (dora) w.array().colwise() *= g.array();
    return;
  }
  const Matrix delta = delta_of(e);  // emulated dtypes: as PEFT rounds it, bit for bit as before
  w = dora ? Matrix(g.asDiagonal() * (w + delta)) : Matrix(w + delta);
}

template <class Base>
void LoraLayer<Base>::unmerge_from(const Entry& e, Matrix& w, bool round_delta) const {
  const bool dora = e.adapter.config().use_dora;
  if (dtype_ == Dtype::Float64) {  // in place (rounding s B A to float64 changes nothing)
    if (dora) w.array().colwise() *= e.dora_scale_at_merge.cwiseInverse().array();
    add_scaled_product(w, -e.adapter.scaling(), e.adapter.b(), e.adapter.a());
    return;
  }
  Matrix delta = delta_of(e);
  if (round_delta) delta = round_to(dtype_, delta);
  w = dora ? Matrix(e.dora_scale_at_merge.cwiseInverse().asDiagonal() * w - delta) : Matrix(w - delta);
}

template <class Base>
Matrix LoraLayer<Base>::without_merged_adapters(Matrix w) const {
  for (auto it = adapters_.merged.rbegin(); it != adapters_.merged.rend(); ++it) unmerge_from(adapters_.get(*it), w, false);
  return w;
}

template <class Base>
void LoraLayer<Base>::unmerge() {
  if (adapters_.merged.empty()) return;
  // PEFT writes each adapter back (rounding to the weight dtype, or requantizing); a dense float64
  // weight written back is the same weight, so there it is written once, at the end.
  const bool each = convention_ == Convention::Peft && !(std::is_same_v<Base, DenseLinear> && dtype_ == Dtype::Float64);
  Matrix w = base_.weight();
  std::optional<Vector> bias = base_.bias();
  for (auto it = adapters_.merged.rbegin(); it != adapters_.merged.rend(); ++it) {
    const Entry& e = adapters_.get(*it);
    // Plain LoRA subtracts delta.to(weight dtype); DoRA's unmerge computes W'/g - delta in float32
    // and rounds once (cast_as_written), in every release.
    unmerge_from(e, w, Base::peft_quirks.lora_unmerge_rounds_delta && !e.adapter.config().use_dora);
    if (const auto db = delta_bias_of(e); db && bias) *bias = round_to(dtype_, Vector(*bias - *db));
    if (each) {
      cast_as_written(e, w);
      replace(std::move(w), bias);
      w = base_.weight();
      bias = base_.bias();
    }
  }
  if (!each) replace(std::move(w), std::move(bias));
  adapters_.merged.clear();
}

template class LoraLayer<DenseLinear>;
template class LoraLayer<HqqLinear>;
template class LoraLayer<AqlmLinear>;
template class LoraLayer<EetqLinear>;

}  // namespace qoracle
