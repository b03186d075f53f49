#include "reference/eetq_linear.hpp"

#include "reference/error.hpp"
#include "reference/float64_products.hpp"
#include "reference/validate.hpp"

namespace qoracle {

const char* eetq_kernel_name(EetqKernel k) {
  switch (k) {
    case EetqKernel::Exact: return "exact";
    case EetqKernel::Fp32Accumulate: return "fp16_dequantize_fp32_accumulate";
  }
  return "?";
}

EetqKernel parse_eetq_kernel(const std::string& name) {
  if (name == "exact") return EetqKernel::Exact;
  if (name == "fp16_dequantize_fp32_accumulate") return EetqKernel::Fp32Accumulate;
  throw Error("kernel: expected exact or fp16_dequantize_fp32_accumulate, got '" + name + "'");
}

EetqLinear::EetqLinear(EetqQuantized weight, std::optional<Vector> bias, EetqKernel kernel)
    : weight_(std::move(weight)), bias_(std::move(bias)), kernel_(kernel) {
  const CodeMatrix& q = weight_.q;
  require_eetq_shape(static_cast<int>(q.cols()), static_cast<int>(q.rows()));
  require_eetq_codes(q, "weight");
  require_size(weight_.scales, q.rows(), "weight_scales");
  require_finite(weight_.scales, "weight_scales");
  if (bias_) {
    require_size(*bias_, q.rows(), "bias");
    require_finite(*bias_, "bias");
  }
}

EetqLinear EetqLinear::from_checkpoint(const std::vector<std::int8_t>& bytes, int in, int out, EetqLayout layout,
                                       Vector scales, std::optional<Vector> bias, EetqKernel kernel) {
  return EetqLinear({eetq_decode(bytes, in, out, layout), std::move(scales)}, std::move(bias), kernel);
}

void EetqLinear::decode_rows(int begin, int end, double* rows) const {
  const CodeMatrix& q = weight_.q;  // row-major (out, in)
  const Eigen::Index in = q.cols();
  for (int o = begin; o < end; ++o) {
    const double s = weight_.scales(o);
    const int* codes = q.row(o).data();
    double* out = rows + static_cast<std::size_t>(o - begin) * in;
    for (Eigen::Index i = 0; i < in; ++i) out[i] = codes[i] * s;  // exact in double
  }
}

Matrix EetqLinear::weight() const {
  return decode_all(out_features(), in_features(), [this](int b, int e, double* r) { decode_rows(b, e, r); });
}

Matrix EetqLinear::forward(const Matrix& x, Dtype dtype) const {
  require_input(x, in_features());
  if (kernel_ == EetqKernel::Exact) {
    // Exact in float64 on every core; results the caller rounds keep Eigen's product (bit for bit).
    Matrix y = dtype == Dtype::Float64 ? times_decoded_transposed(x, out_features(), in_features(),
                                                                  [this](int b, int e, double* r) { decode_rows(b, e, r); })
                                       : Matrix(x * weight().transpose());
    if (bias_) y.rowwise() += bias_->transpose();
    return y;
  }
  if (dtype != Dtype::Float16)
    throw Error(std::string("activations: EETQ's kernels read activations as float16 only, got ") + dtype_name(dtype) +
                " (the library would reinterpret the bits and return garbage without an error)");
  // Products of fp16 values are exact in double; their float32 sum is modelled as the exact sum
  // rounded once to float32 (the GPU's summation order is not observable here).
  Matrix y = round_to(Dtype::Float16, round_to(Dtype::Float32, Matrix(x * eetq_dequantize(weight_, true).transpose())));
  if (bias_) {  // PyTorch's separate fp16 add: float32 sum, rounded to fp16
    y.rowwise() += bias_->transpose();
    y = round_to(Dtype::Float16, round_to(Dtype::Float32, y));
  }
  return y;
}

void EetqLinear::set_weight(const Matrix&, Dtype) { throw Error(std::string("merge: ") + no_merge); }

}  // namespace qoracle
