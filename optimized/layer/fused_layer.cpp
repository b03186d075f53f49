#include "optimized/layer/fused_layer.hpp"

#include <algorithm>
#include <iterator>
#include <string>
#include <variant>

#include "optimized/layer/weight_views.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

namespace {

// The reference's layout of each EetqWeights::layout value (EetqView::Layout), in that order.
constexpr EetqLayout kEetqLayouts[] = {EetqLayout::Interleaved, EetqLayout::Volta, EetqLayout::Plain};
static_assert(EetqView::Interleaved == 0 && EetqView::Volta == 1 && EetqView::Plain == 2);

HostLayer shape_of(int out, int in, const std::optional<Vector>& bias) {
  HostLayer l;
  l.out_features = out;
  l.in_features = in;
  if (bias) l.bias = to_floats(*bias);
  return l;
}

}  // namespace

std::vector<float> to_floats(const Matrix& m) {
  std::vector<float> v;
  v.reserve(static_cast<std::size_t>(m.size()));
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c < m.cols(); ++c) v.push_back(static_cast<float>(m(r, c)));
  return v;
}

std::vector<float> to_floats(const Vector& v) {
  std::vector<float> out(static_cast<std::size_t>(v.size()));
  for (Eigen::Index i = 0; i < v.size(); ++i) out[static_cast<std::size_t>(i)] = static_cast<float>(v(i));
  return out;
}

Activations activations_for(Dtype compute_dtype) {
  switch (compute_dtype) {
    case Dtype::Float16: return Activations::Float16;
    case Dtype::BFloat16: return Activations::BFloat16;
    default: return Activations::Float32;
  }
}

HostRotation host_rotation(const OftAdapter& a, Convention convention) {
  HostRotation r;
  // The stored (unprojected) parameters: COFT's projection runs in the batched Cayley.
  const Matrix& w = a.weight();
  r.params = to_floats(w);
  r.rows = static_cast<int>(w.rows());
  r.block_size = a.blocks().block_size;
  r.block_share = a.config().block_share;
  r.neumann = a.config().use_cayley_neumann;
  r.terms = a.config().num_cayley_neumann_terms;
  r.math_series = convention == Convention::Math;
  // The kernels form PEFT >= 0.18's series; 0.17's (I + 2S + ... + 2S^(n-1), training.md §4) differs
  // from n = 3 on and is refused rather than computed as the newer one.
  if (convention == Convention::Peft && r.neumann && r.terms >= 3 &&
      a.peft_neumann_series() == PeftNeumannSeries::AllTwos)
    throw Error("optimized: PEFT 0.17's Cayley-Neumann series (I + 2S + ... + 2S^(n-1), n = " + std::to_string(r.terms) +
                ") is not implemented in the fused kernels, which form 0.18's; the reference checks these cases");
  if (a.config().coft) r.coft_radius = static_cast<float>(coft_radius(a.config().eps, r.rows, convention));
  return r;
}

Matrix from_floats(const std::vector<float>& v, int rows, int cols) {
  Matrix m(rows, cols);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) m(r, c) = v[static_cast<std::size_t>(r) * cols + c];
  return m;
}

HostLayer host_base(const DenseLinear& base) {
  HostLayer l = shape_of(base.out_features(), base.in_features(), base.bias());
  l.weights = DenseWeights{to_floats(base.weight())};
  return l;
}

HostLayer host_base(const HqqLinear& base) {
  HostLayer l = shape_of(base.out_features(), base.in_features(), base.bias());
  const HqqQuantized& q = base.quantized();
  const HqqPacked packed = base.packed();
  HqqWeights w;
  for (std::uint32_t word : packed.words) {
    if (q.config.nbits == 3)
      w.w_q32.push_back(static_cast<std::int32_t>(word));
    else
      w.w_q8.push_back(static_cast<std::uint8_t>(word));
  }
  w.scale = to_floats(q.scale);
  w.zero = to_floats(q.zero);
  w.nbits = q.config.nbits;
  w.axis = q.config.axis;
  w.cols = packed.cols;
  w.packed_rows = packed.rows;
  w.round_zero = q.config.round_zero;
  w.optimize = q.config.optimize;
  w.iters = q.config.iters;
  w.lp_norm = q.config.lp_norm;
  w.beta = q.config.beta;
  l.weights = std::move(w);
  return l;
}

HostLayer host_base(const AqlmLinear& base) {
  HostLayer l = shape_of(base.out_features(), base.in_features(), base.bias());
  const AqlmConfig& c = base.config();
  AqlmWeights w;
  for (int u : base.codes()) {  // as a checkpoint stores them (signed)
    const std::int64_t stored = aqlm_stored_code(u, c.nbits_per_codebook);
    if (c.nbits_per_codebook > 8)
      w.codes16.push_back(static_cast<std::int16_t>(stored));
    else
      w.codes8.push_back(static_cast<std::int8_t>(stored));
  }
  w.codebooks.assign(base.codebooks().begin(), base.codebooks().end());
  w.scales = to_floats(base.scales());
  w.in_groups = base.in_features() / c.in_group_size;
  w.num_codebooks = c.num_codebooks;
  w.nbits = c.nbits_per_codebook;
  w.out_group = c.out_group_size;
  w.in_group = c.in_group_size;
  l.weights = std::move(w);
  return l;
}

HostLayer host_base(const EetqLinear& base, EetqLayout layout) {
  HostLayer l = shape_of(base.out_features(), base.in_features(), base.bias());
  EetqWeights w;
  w.bytes = eetq_encode(base.quantized().q, layout);
  w.scales = to_floats(base.quantized().scales);
  w.layout = static_cast<int>(std::find(std::begin(kEetqLayouts), std::end(kEetqLayouts), layout) -
                              std::begin(kEetqLayouts));
  l.weights = std::move(w);
  return l;
}

EetqLinear eetq_base_of(const HostLayer& layer) {
  const auto* w = std::get_if<EetqWeights>(&layer.weights);
  if (!w) throw Error("base: an EETQ layer expected");
  if (w->layout < 0 || w->layout >= static_cast<int>(std::size(kEetqLayouts)))
    throw Error("layout: expected 0 (sm75-sm89), 1 (sm70) or 2 (plain), got " + std::to_string(w->layout));
  const EetqLayout layout = kEetqLayouts[w->layout];
  std::optional<Vector> bias;
  if (!layer.bias.empty()) bias = Vector(from_floats(layer.bias, layer.out_features, 1).col(0));
  return EetqLinear::from_checkpoint(w->bytes, layer.in_features, layer.out_features, layout,
                                     Vector(from_floats(w->scales, layer.out_features, 1).col(0)), std::move(bias),
                                     EetqKernel::Exact);
}

}  // namespace qoracle::optimized
