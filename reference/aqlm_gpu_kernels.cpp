#include "reference/aqlm_gpu_kernels.hpp"

#include <algorithm>
#include <array>
#include <string>

#include "reference/error.hpp"

namespace qoracle {

namespace {

int ceil_div(int a, int b) { return (a + b - 1) / b; }

bool is_cuda_kernel(AqlmKernel k) {
  return k == AqlmKernel::CudaMatvec || k == AqlmKernel::CudaMatvecTuring || k == AqlmKernel::CudaDequantGemm;
}

bool is_power_of_two(int v) { return v > 0 && (v & (v - 1)) == 0; }

std::string config_name(const AqlmConfig& c) {
  return std::to_string(c.num_codebooks) + "x" + std::to_string(c.nbits_per_codebook) + " (in_group_size " +
         std::to_string(c.in_group_size) + ", out_group_size " + std::to_string(c.out_group_size) + ")";
}

// 2x8 on sm_80+ adds the two codebooks' vectors with __hadd2 before the FMAs; Kx8MatVec (1x8
// always, 2x8 on sm_75) runs one pass per codebook instead.
bool sums_codebooks_first(const AqlmLinear& layer) {
  return layer.config().num_codebooks == 2 && layer.kernel() != AqlmKernel::CudaMatvecTuring;
}

// Codebook entry c of the vector output `o` uses in input group `group`: codebook k's alone, or
// (when the kernel pre-sums) both codebooks' entries added with one rounding to the dtype.
double kernel_weight(const AqlmLinear& layer, Dtype d, int o, int group, int k, int c, bool presum) {
  if (!presum) return layer.codebook(k, layer.code(o, group, k), 0, c);
  return fused_multiply_add(d, 1.0, layer.codebook(0, layer.code(o, group, 0), 0, c),
                            layer.codebook(1, layer.code(o, group, 1), 0, c));
}

void require_gpu_dtype(const AqlmLinear& layer, Dtype d) {
  const AqlmKernel k = layer.kernel();
  const bool low = d == Dtype::Float16 || d == Dtype::BFloat16;
  if (is_cuda_kernel(k) && !low)
    throw Error(std::string("dtype: the AQLM CUDA kernels support float16 and bfloat16 activations only (the library "
                            "raises NotImplementedError), got ") + dtype_name(d));
  if (k == AqlmKernel::Triton && !low && d != Dtype::Float32)
    throw Error(std::string("dtype: the Triton kernel runs float32, float16 or bfloat16, got ") + dtype_name(d));
  if (k == AqlmKernel::CudaMatvecTuring && d == Dtype::BFloat16)
    throw Error("dtype: bfloat16 needs compute capability 8.0 or newer (on sm_75 the library raises TypeError); use "
                "float16");
  if (d != layer.dtype())
    throw Error(std::string("dtype: the GPU kernels read the codebooks in the activations' dtype, so the layer must "
                            "store ") + dtype_name(d) + ", but it stores " + dtype_name(layer.dtype()));
}

// x * scale and + bias as torch's elementwise ops on dtype tensors: float32 math, one rounding.
double scale_and_bias(const AqlmLinear& layer, Dtype d, double out, int o) {
  const int group = o / layer.config().out_group_size;
  out = round_to(d, static_cast<float>(out) * static_cast<float>(layer.scales()(group)));
  if (layer.bias()) out = round_to(d, static_cast<float>(out) + static_cast<float>((*layer.bias())(o)));
  return out;
}

}  // namespace

int aqlm_code1x16_covered_inputs(int in_features, int in_group_size) {
  const int groups = in_features / in_group_size;
  const int iterations = ceil_div(groups, 32 * in_group_size);  // the library's loop count
  return std::min(in_features, iterations * 32 * 8 * in_group_size);
}

void require_aqlm_gpu_kernel_fits(const AqlmLinear& layer) {
  const AqlmKernel k = layer.kernel();
  const AqlmConfig& c = layer.config();
  const std::string kernel = aqlm_kernel_name(k);
  if (k == AqlmKernel::Triton) {
    if (c.out_group_size != 1)
      throw Error("out_group_size: triton_gemv is reached only with out_group_size 1 (its out-group branch adds the "
                  "group's bias to every row), got " + std::to_string(c.out_group_size));
    if (!is_power_of_two(c.num_codebooks) || !is_power_of_two(c.in_group_size))
      throw Error("config: triton_gemv needs power-of-two num_codebooks and in_group_size (tl.arange), got " +
                  config_name(c));
  }
  if (k == AqlmKernel::Triton && layer.dtype() == Dtype::Float64)
    throw Error("dtype: triton_gemv runs float32, float16 or bfloat16 layers, got float64");
  if (!is_cuda_kernel(k)) return;
  if (!aqlm_has_cuda_kernel(c))
    throw Error("config: " + kernel + " runs 1x16 (in_group_size 8 or 16), 2x8 and 1x8 (in_group_size 8) with "
                "out_group_size 1, got " + config_name(c));
  if (layer.dtype() != Dtype::Float16 && layer.dtype() != Dtype::BFloat16)
    throw Error(std::string("dtype: ") + kernel + " needs a float16 or bfloat16 layer, got " + dtype_name(layer.dtype()));
  const int multiple = 8 * c.in_group_size;  // 8 codes per 16-byte load
  if (layer.in_features() % multiple != 0)
    throw Error("in_features: " + kernel + " reads 8 codes per 16-byte load, so in_features must be a multiple of " +
                std::to_string(multiple) + " (the library mis-strides rows otherwise), got " +
                std::to_string(layer.in_features()));
  if (k == AqlmKernel::CudaDequantGemm && c.nbits_per_codebook == 16) {
    const int covered = aqlm_code1x16_covered_inputs(layer.in_features(), c.in_group_size);
    if (covered < layer.in_features())
      throw Error("in_features: aqlm's Code1x16Dequant writes only the first " + std::to_string(covered) + " of " +
                  std::to_string(layer.in_features()) + " columns of W for in_group_size 16 (its loop count is too "
                  "small) and leaves the rest uninitialized; the output would be garbage");
  }
}

Matrix aqlm_cuda_matvec(const AqlmLinear& layer, const Matrix& x, Dtype d) {
  require_gpu_dtype(layer, d);
  const AqlmConfig& c = layer.config();
  const int g = c.in_group_size;
  const int chunks = layer.in_features() / g / 8;  // a lane's 16-byte load holds 8 groups' codes
  const int iterations = c.nbits_per_codebook == 16 ? ceil_div(layer.in_features() / g, 32 * g)  // (sic, see header)
                                                    : ceil_div(layer.in_features() / g, 32 * 8);
  const bool presum = sums_codebooks_first(layer);
  const int passes = presum ? 1 : c.num_codebooks;
  const Matrix xs = round_to(d, x);
  Matrix y(x.rows(), layer.out_features());
  for (Eigen::Index n = 0; n < x.rows(); ++n)
    for (int o = 0; o < layer.out_features(); ++o) {
      float total = 0.0f;
      for (int k = 0; k < passes; ++k) {
        std::array<float, 32> lane{};
        for (int it = 0; it < iterations; ++it)
          for (int l = 0; l < 32; ++l) {
            const int chunk = it * 32 + l;
            if (chunk >= chunks) continue;
            for (int i = 0; i < 8; ++i) {
              const int group = chunk * 8 + i;
              double even = 0.0, odd = 0.0;  // res2.x and res2.y, each rounded by every FMA
              for (int j = 0; j < g / 2; ++j) {
                even = fused_multiply_add(d, kernel_weight(layer, d, o, group, k, 2 * j, presum), xs(n, group * g + 2 * j), even);
                odd = fused_multiply_add(d, kernel_weight(layer, d, o, group, k, 2 * j + 1, presum), xs(n, group * g + 2 * j + 1), odd);
              }
              lane[l] += static_cast<float>(even) + static_cast<float>(odd);
            }
          }
        for (int offset = 16; offset > 0; offset /= 2)  // __shfl_down_sync tree; lane 0 keeps the sum
          for (int l = 0; l < offset; ++l) lane[l] += lane[l + offset];
        total += lane[0];  // Kx8MatVec: res_accum += res per codebook (one pass otherwise)
      }
      y(n, o) = scale_and_bias(layer, d, round_to(d, total), o);
    }
  return y;
}

Matrix aqlm_cuda_dequant_gemm(const AqlmLinear& layer, const Matrix& x, Dtype d) {
  require_gpu_dtype(layer, d);
  const AqlmConfig& c = layer.config();
  const int g = c.in_group_size;
  const bool presum = c.num_codebooks == 2;  // both 2x8 dequant kernels round the sum with __hadd2
  Matrix w(layer.out_features(), layer.in_features());  // unscaled, in the dtype
  for (int o = 0; o < layer.out_features(); ++o)
    for (int col = 0; col < layer.in_features(); ++col)
      w(o, col) = kernel_weight(layer, d, o, col / g, 0, col % g, presum);
  // F.linear: cuBLAS accumulates in float32 in an order it chooses; emulated as the exact sum
  // rounded to float32 and then to the dtype (TOLERANCES.md bounds the order).
  const Matrix acc = round_to(d, x) * w.transpose();
  Matrix y(x.rows(), layer.out_features());
  for (Eigen::Index n = 0; n < x.rows(); ++n)
    for (int o = 0; o < layer.out_features(); ++o) y(n, o) = scale_and_bias(layer, d, round_to(d, acc(n, o)), o);
  return y;
}

Matrix aqlm_triton_gemv(const AqlmLinear& layer, const Matrix& x, Dtype d) {
  require_gpu_dtype(layer, d);
  const AqlmConfig& c = layer.config();
  const int g = c.in_group_size;
  const Matrix xs = round_to(d, x);
  Matrix y(x.rows(), layer.out_features());
  for (Eigen::Index n = 0; n < x.rows(); ++n)
    for (int o = 0; o < layer.out_features(); ++o) {
      double sum = 0.0;  // float32 products (exact for 16-bit inputs), tl.sum in an open order
      for (int col = 0; col < layer.in_features(); ++col)
        for (int k = 0; k < c.num_codebooks; ++k)
          sum += static_cast<float>(layer.codebook(k, layer.code(o, col / g, k), 0, col % g)) *
                 static_cast<float>(xs(n, col));
      float out = static_cast<float>(sum) * static_cast<float>(layer.scales()(o));
      if (layer.bias()) out += static_cast<float>((*layer.bias())(o));
      y(n, o) = round_to(d, out);
    }
  return y;
}

}  // namespace qoracle
