#include "reference/aqlm_linear.hpp"

#include <cstring>

#include "reference/aqlm_gpu_kernels.hpp"
#include "reference/error.hpp"
#include "reference/float64_products.hpp"
#include "reference/validate.hpp"

namespace qoracle {

const char* aqlm_kernel_name(AqlmKernel k) {
  switch (k) {
    case AqlmKernel::Exact: return "exact";
    case AqlmKernel::DequantizeGemm: return "dequantize_gemm";
    case AqlmKernel::NumbaLut: return "numba_gemm_lut";
    case AqlmKernel::CudaMatvec: return "cuda_matvec";
    case AqlmKernel::CudaMatvecTuring: return "cuda_matvec_sm75";
    case AqlmKernel::CudaDequantGemm: return "cuda_dequant_gemm";
    case AqlmKernel::Triton: return "triton_gemv";
  }
  return "?";
}

AqlmKernel parse_aqlm_kernel(const std::string& name) {
  std::string accepted;
  for (AqlmKernel k : {AqlmKernel::Exact, AqlmKernel::DequantizeGemm, AqlmKernel::NumbaLut, AqlmKernel::CudaMatvec,
                       AqlmKernel::CudaMatvecTuring, AqlmKernel::CudaDequantGemm, AqlmKernel::Triton}) {
    if (name == aqlm_kernel_name(k)) return k;
    accepted += std::string(accepted.empty() ? "" : ", ") + aqlm_kernel_name(k);
  }
  throw Error("kernel: expected one of " + accepted + ", got '" + name + "'");
}

AqlmKernel aqlm_cpu_kernel(const AqlmConfig& c) {
  return c.nbits_per_codebook == 8 && c.out_group_size == 1 ? AqlmKernel::NumbaLut : AqlmKernel::DequantizeGemm;
}

bool aqlm_has_cuda_kernel(const AqlmConfig& c) {
  const bool one_by_16 = c.num_codebooks == 1 && c.nbits_per_codebook == 16 && (c.in_group_size == 8 || c.in_group_size == 16);
  const bool kx8 = (c.num_codebooks == 1 || c.num_codebooks == 2) && c.nbits_per_codebook == 8 && c.in_group_size == 8;
  return c.out_group_size == 1 && (one_by_16 || kx8);
}

AqlmKernel aqlm_cuda_kernel(const AqlmConfig& c, int rows, int cc_major, int cc_minor) {
  if (aqlm_has_cuda_kernel(c)) {
    if (rows > 6) return AqlmKernel::CudaDequantGemm;
    return cc_major == 7 && cc_minor == 5 ? AqlmKernel::CudaMatvecTuring : AqlmKernel::CudaMatvec;
  }
  // Triton only for the GEMV rule; more rows (or out groups) fall through to the fallback.
  return c.out_group_size == 1 && rows <= 6 ? AqlmKernel::Triton : AqlmKernel::DequantizeGemm;
}

std::int64_t aqlm_stored_code(int u, int nbits) {
  return u >= (1 << (nbits - 1)) ? static_cast<std::int64_t>(u) - (std::int64_t{1} << nbits) : u;
}

int aqlm_code_index(std::int64_t stored, int nbits) {
  const std::int64_t k = std::int64_t{1} << nbits;
  return static_cast<int>(((stored % k) + k) % k);
}

AqlmGeometry aqlm_geometry(const AqlmConfig& c, int out, int in) {
  if (c.nbits_per_codebook < 1 || c.nbits_per_codebook > 16)
    throw Error("nbits_per_codebook: expected 1..16, got " + std::to_string(c.nbits_per_codebook));
  if (c.num_codebooks < 1) throw Error("num_codebooks: expected >= 1, got " + std::to_string(c.num_codebooks));
  if (c.in_group_size < 1 || in % c.in_group_size != 0)
    throw Error("in_group_size: expected a positive divisor of in_features " + std::to_string(in) + ", got " +
                std::to_string(c.in_group_size));
  if (c.out_group_size < 1 || out % c.out_group_size != 0)
    throw Error("out_group_size: expected a positive divisor of out_features " + std::to_string(out) + ", got " +
                std::to_string(c.out_group_size));
  return {out / c.out_group_size, in / c.in_group_size, 1 << c.nbits_per_codebook};
}

AqlmLinear::AqlmLinear(AqlmConfig config, int out_features, int in_features, std::vector<int> codes,
                       std::vector<double> codebooks, Vector scales, std::optional<Vector> bias, Dtype dtype,
                       AqlmKernel kernel)
    : config_(config), out_(out_features), in_(in_features), codes_(std::move(codes)),
      codebooks_(std::move(codebooks)), scales_(std::move(scales)), bias_(std::move(bias)), dtype_(dtype),
      kernel_(kernel) {
  const AqlmConfig& c = config_;
  const AqlmGeometry g = aqlm_geometry(c, out_, in_);
  og_count_ = g.out_groups;
  ig_count_ = g.in_groups;
  entries_ = g.entries;
  const std::size_t want_codes = static_cast<std::size_t>(og_count_) * ig_count_ * c.num_codebooks;
  if (codes_.size() != want_codes)
    throw Error("codes: expected " + std::to_string(want_codes) + " values [" + std::to_string(og_count_) + ", " +
                std::to_string(ig_count_) + ", " + std::to_string(c.num_codebooks) + "], got " +
                std::to_string(codes_.size()));
  for (std::size_t i = 0; i < codes_.size(); ++i)
    if (codes_[i] < 0 || codes_[i] >= entries_)
      throw Error("codes: index " + std::to_string(codes_[i]) + " at flat " + std::to_string(i) + " is outside [0, " +
                  std::to_string(entries_) + ")");
  const std::size_t want_cb =
      static_cast<std::size_t>(c.num_codebooks) * entries_ * c.out_group_size * c.in_group_size;
  if (codebooks_.size() != want_cb)
    throw Error("codebooks: expected shape [" + std::to_string(c.num_codebooks) + ", " + std::to_string(entries_) +
                ", " + std::to_string(c.out_group_size) + ", " + std::to_string(c.in_group_size) + "] (" +
                std::to_string(want_cb) + " values) for the config, got " + std::to_string(codebooks_.size()) + " values");
  for (std::size_t i = 0; i < codebooks_.size(); ++i)
    if (!std::isfinite(codebooks_[i])) throw Error("codebooks: expected finite values, found a non-finite one at flat " + std::to_string(i));
  require_size(scales_, og_count_, "scales");
  require_finite(scales_, "scales");
  if (bias_) {
    require_size(*bias_, out_, "bias");
    require_finite(*bias_, "bias");
  }
  if (kernel_ == AqlmKernel::NumbaLut && (entries_ != 256 || c.out_group_size != 1))
    throw Error("kernel: numba_gemm_lut needs 256-entry codebooks and out_group_size 1");
  require_aqlm_gpu_kernel_fits(*this);
}

double AqlmLinear::codebook(int k, int u, int r, int c) const {
  const AqlmConfig& g = config_;
  return codebooks_[((static_cast<std::size_t>(k) * entries_ + u) * g.out_group_size + r) * g.in_group_size + c];
}

// W from the stored tensors. Exact: double sums, which are exact (spec §2.1). As the library's
// fallback computes it: the C entries summed in order in float32 (embedding_bag), rounded to the
// codebook dtype, times the scale, rounded again.
Matrix AqlmLinear::decode(bool as_library) const {
  const AqlmConfig& g = config_;
  const bool float32_sums = as_library && dtype_ != Dtype::Float64;
  Matrix w(out_, in_);
  for (int o = 0; o < og_count_; ++o)
    for (int i = 0; i < ig_count_; ++i)
      for (int r = 0; r < g.out_group_size; ++r)
        for (int c = 0; c < g.in_group_size; ++c) {
          double sum = 0;
          for (int k = 0; k < g.num_codebooks; ++k) {
            const double e = codebook(k, code(o, i, k), r, c);
            sum = float32_sums ? static_cast<double>(static_cast<float>(sum) + static_cast<float>(e)) : sum + e;
          }
          w(o * g.out_group_size + r, i * g.in_group_size + c) =
              as_library ? round_to(dtype_, embedding_bag_sum(sum) * scales_(o)) : scales_(o) * sum;
        }
  return w;
}

// torch's CPU embedding_bag returns its float32 sum rounded to the codebook dtype; in bfloat16 it
// rounds half away from zero (measured on torch 2.15: 0 of 16000 two-codebook sums off that way,
// 419 off round-to-nearest-even), in float16 to nearest even.
double AqlmLinear::embedding_bag_sum(double float32_sum) const {
  if (dtype_ != Dtype::BFloat16) return round_to(dtype_, float32_sum);
  std::uint32_t bits = 0;
  const float f = static_cast<float>(float32_sum);
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7f800000u) != 0x7f800000u) bits = (bits + 0x8000u) & 0xffff0000u;  // finite: half away
  else bits &= 0xffff0000u;
  float out = 0.0f;
  std::memcpy(&out, &bits, sizeof out);
  return static_cast<double>(out);
}

void AqlmLinear::decode_exact_rows(int begin, int end, double* rows) const {
  const AqlmConfig& g = config_;
  for (int row = begin; row < end; ++row) {
    const int o = row / g.out_group_size, r = row % g.out_group_size;
    double* out = rows + static_cast<std::size_t>(row - begin) * in_;
    const double scale = scales_(o);
    if (g.num_codebooks == 1) {  // one entry per group: scale * (0 + e) is scale * e
      for (int i = 0; i < ig_count_; ++i) {
        const double* e = &codebooks_[(static_cast<std::size_t>(code(o, i, 0)) * g.out_group_size + r) * g.in_group_size];
        double* group = out + static_cast<std::size_t>(i) * g.in_group_size;
        for (int c = 0; c < g.in_group_size; ++c) group[c] = scale * e[c];
      }
      continue;
    }
    for (int i = 0; i < ig_count_; ++i) {
      double* group = out + static_cast<std::size_t>(i) * g.in_group_size;
      std::fill(group, group + g.in_group_size, 0.0);
      for (int k = 0; k < g.num_codebooks; ++k) {  // the same sums, in the same order, as decode
        const double* e = &codebooks_[((static_cast<std::size_t>(k) * entries_ + code(o, i, k)) * g.out_group_size + r) *
                                      g.in_group_size];
        for (int c = 0; c < g.in_group_size; ++c) group[c] += e[c];
      }
      for (int c = 0; c < g.in_group_size; ++c) group[c] = scale * group[c];
    }
  }
}

Matrix AqlmLinear::weight() const {
  return decode_all(out_, in_, [this](int b, int e, double* rows) { decode_exact_rows(b, e, rows); });
}

Matrix AqlmLinear::forward(const Matrix& x, Dtype dtype) const {
  require_input(x, in_);
  switch (kernel_) {
    case AqlmKernel::NumbaLut: return forward_numba(x);
    case AqlmKernel::DequantizeGemm: return forward_dequantize_gemm(x, dtype);
    case AqlmKernel::CudaMatvec:
    case AqlmKernel::CudaMatvecTuring: return aqlm_cuda_matvec(*this, x, dtype);
    case AqlmKernel::CudaDequantGemm: return aqlm_cuda_dequant_gemm(*this, x, dtype);
    case AqlmKernel::Triton: return aqlm_triton_gemv(*this, x, dtype);
    case AqlmKernel::Exact: break;
  }
  // Exact in float64 on every core; results the caller rounds keep Eigen's product (bit for bit).
  Matrix y = dtype == Dtype::Float64
                 ? times_decoded_transposed(x, out_, in_, [this](int b, int e, double* r) { decode_exact_rows(b, e, r); })
                 : Matrix(x * weight().transpose());
  if (bias_) y.rowwise() += bias_->transpose();
  return y;
}

Matrix AqlmLinear::forward_dequantize_gemm(const Matrix& x, Dtype dtype) const {
  const Matrix w = decode(true);  // then F.linear rounds once
  Matrix y = x * w.transpose();
  if (bias_) y.rowwise() += bias_->transpose();
  return round_to(dtype, y);
}

Matrix AqlmLinear::forward_numba(const Matrix& x) const {
  // Per row: lut[j, k, u] = x_group_j . codebook[k, u] (float32 sgemm), out[o] = sum over j, then k,
  // of lut[j, k, code] in float32 (one thread: NUMBA_NUM_THREADS=1), out *= scale, + bias.
  const AqlmConfig& g = config_;
  Matrix y(x.rows(), out_);
  std::vector<float> lut(static_cast<std::size_t>(ig_count_) * g.num_codebooks * entries_);
  for (Eigen::Index n = 0; n < x.rows(); ++n) {
    for (int j = 0; j < ig_count_; ++j)
      for (int k = 0; k < g.num_codebooks; ++k)
        for (int u = 0; u < entries_; ++u) {
          double dot = 0;
          for (int c = 0; c < g.in_group_size; ++c)
            dot += static_cast<double>(static_cast<float>(x(n, j * g.in_group_size + c))) * codebook(k, u, 0, c);
          lut[(static_cast<std::size_t>(j) * g.num_codebooks + k) * entries_ + u] = static_cast<float>(dot);
        }
    for (int o = 0; o < out_; ++o) {
      float acc = 0.0f;
      for (int j = 0; j < ig_count_; ++j)
        for (int k = 0; k < g.num_codebooks; ++k)
          acc += lut[(static_cast<std::size_t>(j) * g.num_codebooks + k) * entries_ + code(o, j, k)];
      acc *= static_cast<float>(scales_(o));
      if (bias_) acc += static_cast<float>((*bias_)(o));
      y(n, o) = acc;
    }
  }
  return y;
}

void AqlmLinear::set_weight(const Matrix&, Dtype) { throw Error(std::string("merge: ") + no_merge); }

}  // namespace qoracle
