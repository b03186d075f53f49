#include "reference/hqq_linear.hpp"

#include <algorithm>

#include "reference/dense_linear.hpp"
#include "reference/error.hpp"
#include "reference/float64_products.hpp"
#include "reference/validate.hpp"

namespace qoracle {

HqqLinear::HqqLinear(HqqQuantized quantized, std::optional<Vector> bias, Dtype compute_dtype,
                     HqqArithmetic requantize_with)
    : quantized_(std::move(quantized)), bias_(std::move(bias)), compute_dtype_(compute_dtype),
      requantize_with_(requantize_with) {
  const HqqGrouping g = hqq_grouping(quantized_.config, quantized_.out_features, quantized_.in_features);
  if (quantized_.codes.rows() != g.rows || quantized_.codes.cols() != g.cols)
    throw Error("W_q: expected " + shape_string(g.rows, g.cols) + " codes for meta shape " +
                shape_string(quantized_.out_features, quantized_.in_features) + " with group_size " +
                std::to_string(quantized_.config.group_size) + " and axis " + std::to_string(quantized_.config.axis) +
                ", got " + shape_string(quantized_.codes.rows(), quantized_.codes.cols()));
  if ((quantized_.codes.array() < 0).any() || (quantized_.codes.array() > g.max_code).any())
    throw Error("W_q: codes outside [0, " + std::to_string(g.max_code) + "]");
  require_size(quantized_.scale, g.groups, "scale");
  require_size(quantized_.zero, g.groups, "zero");
  require_finite(quantized_.scale, "scale");
  require_finite(quantized_.zero, "zero");
  quantized_.scale = round_to(compute_dtype_, quantized_.scale);
  quantized_.zero = round_to(compute_dtype_, quantized_.zero);
  if (bias_) {
    require_size(*bias_, quantized_.out_features, "bias");
    require_finite(*bias_, "bias");
  }
}

HqqLinear HqqLinear::from_packed(const HqqConfig& config, int out_features, int in_features, const HqqPacked& w_q,
                                 const Vector& scale, const Vector& zero, std::optional<Vector> bias,
                                 Dtype compute_dtype, HqqArithmetic requantize_with) {
  const HqqGrouping g = hqq_grouping(config, out_features, in_features);
  if (w_q.word_bits != (config.nbits == 3 ? 32 : 8))
    throw Error(std::string("W_q: expected ") + (config.nbits == 3 ? "int32" : "uint8") + " words for " +
                hqq_packing_name(config.nbits));
  HqqQuantized q;
  q.config = config;
  q.out_features = out_features;
  q.in_features = in_features;
  q.codes = hqq_unpack(w_q, config.nbits, g.rows);
  q.scale = scale;
  q.zero = zero;
  return HqqLinear(std::move(q), std::move(bias), compute_dtype, requantize_with);
}

HqqLinear HqqLinear::quantize(const Matrix& weight, std::optional<Vector> bias, const HqqConfig& config,
                              Dtype compute_dtype, HqqArithmetic arithmetic) {
  return HqqLinear(hqq_quantize(weight, config, arithmetic), std::move(bias), compute_dtype, arithmetic);
}

void HqqLinear::decode_rows(int begin, int end, double* rows) const {
  const HqqQuantized& q = quantized_;
  const Dtype compute = compute_dtype_;
  const long long in = q.in_features, gs = q.config.group_size;
  // (code - zero) * scale, each step rounded to the compute dtype (a no-op in float64).
  auto value = [&](int code, Eigen::Index group) {
    if (compute == Dtype::Float64) return (code - q.zero(group)) * q.scale(group);
    return round_to(compute, round_to(compute, code - round_to(compute, q.zero(group))) * round_to(compute, q.scale(group)));
  };
  if (q.config.axis == 1) {
    // Groups run along W's flat (row-major) elements, group g holding [g gs, (g + 1) gs), and the
    // row-major codes are in that order too: the rows are one contiguous run of groups.
    const int* codes = q.codes.data();
    const long long f0 = begin * in, f1 = end * in;
    for (long long g = f0 / gs; g * gs < f1; ++g) {
      const long long a = std::max(f0, g * gs), b = std::min(f1, (g + 1) * gs);
      if (compute == Dtype::Float64) {  // the common case, without a call per element
        const double z = q.zero(g), s = q.scale(g);
        for (long long f = a; f < b; ++f) rows[f - f0] = (codes[f] - z) * s;
      } else {
        for (long long f = a; f < b; ++f) rows[f - f0] = value(codes[f], g);
      }
    }
    return;
  }
  const Eigen::Index cols = q.codes.cols();
  for (long long o = begin; o < end; ++o)
    for (long long i = 0; i < in; ++i) {
      const long long f = o * in + i;
      const Eigen::Index r = f / cols, c = f % cols;
      rows[(o - begin) * in + i] = value(q.codes(r, c), q.config.axis == 1 ? r : c);
    }
}

Matrix HqqLinear::weight() const {
  return decode_all(out_features(), in_features(), [this](int b, int e, double* rows) { decode_rows(b, e, rows); });
}

Matrix HqqLinear::forward(const Matrix& x, Dtype dtype) const {
  require_input(x, in_features());
  if (dtype == Dtype::Float64) {  // the exact math: decoded and multiplied on every core
    Matrix y = times_decoded_transposed(x, out_features(), in_features(),
                                        [this](int b, int e, double* rows) { decode_rows(b, e, rows); });
    if (bias_) y.rowwise() += bias_->transpose();
    return y;
  }
  Matrix y = round_to(dtype, Matrix(x * weight().transpose()));
  if (bias_) y = round_to(dtype, Matrix(y.rowwise() + bias_->transpose()));
  return y;
}

void HqqLinear::set_weight(const Matrix& weight, Dtype /*dtype*/) {
  HqqQuantized q = hqq_quantize(requantize_hook_ ? requantize_hook_(weight) : weight, quantized_.config, requantize_with_);
  q.scale = round_to(compute_dtype_, q.scale);
  q.zero = round_to(compute_dtype_, q.zero);
  quantized_ = std::move(q);
}

}  // namespace qoracle
