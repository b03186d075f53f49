#include "bench/torch_baseline/peft_like.hpp"

#include <cmath>
#include <limits>

#include "reference/error.hpp"

namespace qoracle::torch_baseline {

at::Tensor to_tensor(const Matrix& m) {
  at::Tensor t = at::empty({m.rows(), m.cols()}, at::kFloat);
  float* p = t.data_ptr<float>();
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c < m.cols(); ++c) p[r * m.cols() + c] = static_cast<float>(m(r, c));
  return t;
}

at::Tensor to_tensor(const Vector& v) {
  at::Tensor t = at::empty({v.size()}, at::kFloat);
  for (Eigen::Index i = 0; i < v.size(); ++i) t.data_ptr<float>()[i] = static_cast<float>(v(i));
  return t;
}

Matrix to_matrix(const at::Tensor& t) {
  const at::Tensor d = t.to(at::kDouble).contiguous();
  if (d.dim() != 2) throw Error("to_matrix: expected a 2-D tensor, got " + std::to_string(d.dim()) + "-D");
  Matrix m(d.size(0), d.size(1));
  const double* p = d.data_ptr<double>();
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c < m.cols(); ++c) m(r, c) = p[r * m.cols() + c];
  return m;
}

namespace {

c10::optional<at::Tensor> bias_tensor(const std::optional<Vector>& b) {
  if (!b) return c10::nullopt;
  return to_tensor(*b);
}

}  // namespace

TorchBase TorchBase::from(const DenseLinear& layer) {
  TorchBase t;
  t.format_ = "linear";
  at::Tensor w = to_tensor(layer.weight());
  t.dequantize_ = [w] { return w; };
  t.bias_ = bias_tensor(layer.bias());
  return t;
}

TorchHqqQuantized torch_hqq_quantize(const at::Tensor& weight, const HqqConfig& config) {
  const HqqGrouping g = hqq_grouping(config, static_cast<int>(weight.size(0)), static_cast<int>(weight.size(1)));
  const std::int64_t dim = config.axis;  // reduce along the group: columns (axis 1) or rows (axis 0)
  const at::Tensor w = weight.to(at::kFloat).reshape({g.rows, g.cols});
  const double max_v = g.max_code;
  const at::Tensor lo = std::get<0>(w.min(dim, true)), hi = std::get<0>(w.max(dim, true));
  const at::Tensor denom = hi - lo;
  at::Tensor inv = (max_v * at::reciprocal(denom)).clamp_max(2e4);
  inv = at::where(denom.abs() <= 1e-4, at::ones_like(inv), inv);
  at::Tensor zero = -lo * inv;
  if (config.round_zero) zero = at::round(zero);
  auto codes_for = [&](const at::Tensor& z) { return at::round(w * inv + z).clamp(0, max_v); };
  if (config.optimize) {
    const float shrink_scale = static_cast<float>(1.0 / config.beta);
    double best = std::numeric_limits<double>::infinity();
    for (int i = 0; i < config.iters; ++i) {
      const at::Tensor q = codes_for(zero);
      const at::Tensor w_r = (q - zero) / inv;
      const at::Tensor e = w - w_r;
      // shrink_lp: sign(e) * relu(|e| - (1/beta) |e|^(p-1))
      const at::Tensor w_e = at::sign(e) * at::relu(e.abs() - shrink_scale * at::pow(e.abs(), config.lp_norm - 1.0));
      zero = (q - (w - w_e) * inv).mean(dim, true);  // the update is kept even on the stopping step
      const double err = e.abs().mean().item<double>();
      if (err < best)
        best = err;
      else
        break;
    }
  }
  return {codes_for(zero).to(at::kInt), at::reciprocal(inv).flatten(), zero.flatten()};
}

namespace {

// hqq's W_q: slab j of the grouped code rows sits in bit field j (from the top) of each word;
// uint8 words, or int32 words for 3-bit (rows padded to a multiple of 10 with zeros).
int hqq_container_bits(int nbits) { return nbits == 3 ? 30 : 8; }

at::Tensor hqq_pack_codes(const at::Tensor& codes, int nbits) {
  const int container = hqq_container_bits(nbits), k = container / nbits;
  const std::int64_t rows = codes.size(0), packed_rows = (rows + k - 1) / k;
  at::Tensor padded = at::zeros({packed_rows * k, codes.size(1)}, at::kInt);
  padded.slice(0, 0, rows).copy_(codes);
  at::Tensor words = at::zeros({packed_rows, codes.size(1)}, at::kInt);
  for (int j = 0; j < k; ++j)
    words = at::bitwise_or(words, at::__lshift__(padded.slice(0, j * packed_rows, (j + 1) * packed_rows),
                                                 container - nbits * (j + 1)));
  return nbits == 3 ? words : words.to(at::kByte);
}

// The grouped codes (rows, C) back from W_q, the 3-bit padding rows trimmed.
at::Tensor hqq_unpack_codes(const at::Tensor& w_q, int nbits, std::int64_t rows) {
  const int container = hqq_container_bits(nbits), k = container / nbits;
  std::vector<at::Tensor> slabs;
  for (int j = 0; j < k; ++j)
    slabs.push_back(at::bitwise_and(at::__rshift__(w_q, container - nbits * (j + 1)), (1 << nbits) - 1));
  return at::cat(slabs, 0).slice(0, 0, rows);
}

}  // namespace

void TorchBase::set_hqq(const HqqConfig& config, std::int64_t out, std::int64_t in, at::Tensor w_q, at::Tensor scale,
                        at::Tensor zero) {
  const HqqGrouping g = hqq_grouping(config, static_cast<int>(out), static_cast<int>(in));
  const bool axis1 = config.axis == 1;
  scale = axis1 ? scale.reshape({-1, 1}) : scale.reshape({1, -1});
  zero = axis1 ? zero.reshape({-1, 1}) : zero.reshape({1, -1});
  const int nbits = config.nbits;
  const std::int64_t rows = g.rows;
  // hqq's dequantize: unpack the bit fields, cast to the compute dtype, (W_q - zero) * scale,
  // reshape to (out, in).
  dequantize_ = [=] { return ((hqq_unpack_codes(w_q, nbits, rows).to(at::kFloat) - zero) * scale).reshape({out, in}); };
  hqq_config_ = config;
  hqq_w_q_ = w_q;
  hqq_rows_ = rows;
  matmul_then_add_ = true;
}

at::Tensor TorchBase::hqq_codes() const {
  if (!hqq_config_) throw Error("torch baseline: hqq_codes() of a " + format_ + " layer");
  return hqq_unpack_codes(hqq_w_q_, hqq_config_->nbits, hqq_rows_);
}

TorchBase TorchBase::from(const HqqLinear& layer) {
  const HqqQuantized& q = layer.quantized();
  const HqqPacked packed = layer.packed();  // W_q as hqq stores it
  at::Tensor w_q = at::empty({packed.rows, packed.cols}, q.config.nbits == 3 ? at::kInt : at::kByte);
  for (std::size_t i = 0; i < packed.words.size(); ++i) {
    if (q.config.nbits == 3)
      w_q.data_ptr<std::int32_t>()[i] = static_cast<std::int32_t>(packed.words[i]);
    else
      w_q.data_ptr<std::uint8_t>()[i] = static_cast<std::uint8_t>(packed.words[i]);
  }
  TorchBase t;
  t.format_ = "hqq";
  t.set_hqq(q.config, q.out_features, q.in_features, w_q, to_tensor(q.scale), to_tensor(q.zero));
  t.bias_ = bias_tensor(layer.bias());
  return t;
}

TorchBase TorchBase::from(const AqlmLinear& layer) {
  const AqlmConfig& c = layer.config();
  const AqlmGeometry g = aqlm_geometry(c, layer.out_features(), layer.in_features());
  at::Tensor codes = at::empty({g.out_groups, g.in_groups, c.num_codebooks}, at::kLong);
  for (std::size_t i = 0; i < layer.codes().size(); ++i) codes.data_ptr<std::int64_t>()[i] = layer.codes()[i];
  at::Tensor codebooks = at::empty({c.num_codebooks, g.entries, c.out_group_size, c.in_group_size}, at::kFloat);
  for (std::size_t i = 0; i < layer.codebooks().size(); ++i)
    codebooks.data_ptr<float>()[i] = static_cast<float>(layer.codebooks()[i]);
  const at::Tensor scales = to_tensor(layer.scales()).reshape({-1, 1, 1, 1});
  const std::int64_t out = layer.out_features(), in = layer.in_features();
  TorchBase t;
  t.format_ = "aqlm";
  // aqlm's torch dequantization: one embedding lookup over all codebooks (offset by k * K),
  // summed over codebooks, groups laid out as (Og, og, Ig, ig), then times the per-group scales.
  t.dequantize_ = [=] {
    const at::Tensor offsets = at::arange(c.num_codebooks, at::kLong) * g.entries;
    const at::Tensor table = codebooks.reshape({c.num_codebooks * g.entries, c.out_group_size * c.in_group_size});
    const at::Tensor parts = at::embedding(table, (codes + offsets).flatten(-2, -1))
                                 .view({g.out_groups, g.in_groups, c.num_codebooks, c.out_group_size, c.in_group_size});
    const at::Tensor summed = parts.sum(2).permute({0, 2, 1, 3});  // (Og, og, Ig, ig)
    return (summed * scales).reshape({out, in});
  };
  t.bias_ = bias_tensor(layer.bias());
  return t;
}

TorchBase TorchBase::from(const EetqLinear& layer) {
  const EetqQuantized& q = layer.quantized();
  at::Tensor codes = at::empty({q.q.rows(), q.q.cols()}, at::kChar);
  for (Eigen::Index r = 0; r < q.q.rows(); ++r)
    for (Eigen::Index c = 0; c < q.q.cols(); ++c)
      codes.data_ptr<std::int8_t>()[r * q.q.cols() + c] = static_cast<std::int8_t>(q.q(r, c));
  const at::Tensor scales = to_tensor(q.scales).reshape({-1, 1});
  TorchBase t;
  t.format_ = "eetq";
  t.dequantize_ = [=] { return codes.to(at::kFloat) * scales; };
  t.bias_ = bias_tensor(layer.bias());
  return t;
}

at::Tensor TorchBase::forward(const at::Tensor& x) const {
  if (!matmul_then_add_) return at::linear(x, weight(), bias_);
  at::Tensor out = at::matmul(x, weight().t());
  if (bias_) out += *bias_;
  return out;
}

void TorchBase::set_weight(at::Tensor w) {
  if (format_ == "linear") {
    dequantize_ = [w = std::move(w)] { return w; };
    return;
  }
  if (format_ != "hqq" || !hqq_config_)
    throw Error("torch baseline: PEFT has no merge into a " + format_ + " layer");
  const TorchHqqQuantized q = torch_hqq_quantize(w, *hqq_config_);
  set_hqq(*hqq_config_, w.size(0), w.size(1), hqq_pack_codes(q.codes, hqq_config_->nbits), q.scale, q.zero);
  bias_ = c10::nullopt;  // PEFT's HQQ merge builds a new HQQLinear, which has no bias
}

// ---- OFT ----

at::Tensor TorchOftLinear::rotation_blocks() const {
  if (config_.coft) throw Error("torch baseline: COFT is not implemented in the baseline");
  const std::int64_t b = blocks_.block_size, r = blocks_.r;
  // Skew blocks: the parameter row fills the strict upper triangle (row-major), S = M - M^T.
  const at::Tensor idx = at::triu_indices(b, b, 1);
  at::Tensor m = at::zeros({weight_.size(0), b, b}, at::kFloat);
  m.index_put_({at::indexing::Slice(), idx[0], idx[1]}, weight_);
  at::Tensor s = m - m.transpose(1, 2);
  if (config_.block_share) s = s.expand({r, b, b});
  const at::Tensor eye = at::eye(b, at::kFloat);
  if (!config_.use_cayley_neumann) return at::linalg_solve(eye + s, eye - s, /*left=*/false);
  // PEFT's Neumann loop: I, + 2S, + 2S^2, then + 2S^k for k in [3, n-1), and a final + S^(n-1).
  const int n = config_.num_cayley_neumann_terms;
  at::Tensor rot = eye.expand({r, b, b}).clone();
  if (n > 1) {
    rot = rot + 2 * s;
    if (n > 2) {
      at::Tensor p = at::matmul(s, s);
      rot = rot + 2 * p;
      for (int k = 3; k < n - 1; ++k) {
        p = at::matmul(p, s);
        rot = rot + 2 * p;
      }
      p = at::matmul(p, s);
      rot = rot + p;
    }
  }
  return rot;
}

at::Tensor TorchOftLinear::forward(const at::Tensor& x) const {
  if (merged_) return base_.forward(x);
  const at::Tensor rot = rotation_blocks();
  const std::int64_t r = blocks_.r, b = blocks_.block_size;
  std::vector<std::int64_t> shape(x.sizes().begin(), x.sizes().end() - 1);
  shape.push_back(r);
  shape.push_back(b);
  const at::Tensor z = at::einsum("...rk,rkc->...rc", {x.reshape(shape), rot}).reshape(x.sizes());
  return base_.forward(z);
}

void TorchOftLinear::merge() {
  if (base_.format() != "linear")
    throw Error("torch baseline: PEFT's OFT merge into a " + base_.format() + " layer raises (spec peft-oft-lora.md §3.4)");
  const at::Tensor rot = at::block_diag(at::TensorList(rotation_blocks().unbind(0)));
  base_.set_weight(at::mm(rot, base_.weight().t()).t().contiguous());
  merged_ = true;
}

void TorchOftLinear::unmerge() {
  const at::Tensor rot = at::block_diag(at::TensorList(rotation_blocks().unbind(0)));
  base_.set_weight(at::mm(at::linalg_inv(rot), base_.weight().t()).t().contiguous());
  merged_ = false;
}

// ---- LoRA ----

TorchLoraLinear::TorchLoraLinear(TorchBase base, const LoraAdapter& adapter)
    : base_(std::move(base)), a_(to_tensor(adapter.a())), b_(to_tensor(adapter.b())),
      b_bias_(bias_tensor(adapter.b_bias())), scaling_(adapter.scaling()) {
  if (adapter.config().use_dora) throw Error("torch baseline: DoRA is not implemented in the baseline");
}

at::Tensor TorchLoraLinear::forward(const at::Tensor& x) const {
  if (merged_) return base_.forward(x);
  return base_.forward(x) + at::linear(at::linear(x, a_), b_, b_bias_) * scaling_;
}

at::Tensor TorchLoraLinear::delta_weight() const { return at::mm(b_, a_) * scaling_; }

void TorchLoraLinear::merge() {
  if (b_bias_) throw Error("torch baseline: merging lora_bias is not implemented in the baseline");
  base_.set_weight(base_.weight() + delta_weight());
  merged_ = true;
}

void TorchLoraLinear::unmerge() {
  base_.set_weight(base_.weight() - delta_weight());
  merged_ = false;
}

}  // namespace qoracle::torch_baseline
