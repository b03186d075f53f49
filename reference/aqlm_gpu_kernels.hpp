#pragma once
// aqlm's GPU forward paths, emulated on the host from their arithmetic (spec aqlm.md §2.4), so a
// deployment output can be judged against what the library's own kernel computes:
//
// - CudaMatvec / CudaMatvecTuring (bit for bit; the order is fixed by the kernel): per input group
//   a chain of half2 FMAs (one rounding each; 2x8 first rounds the two codebooks' sum with
//   __hadd2, except on sm_75), lane sums in float32 over the lane's chunks of 8 groups, a warp
//   tree, one rounding to the dtype, then x scale and + bias as rounded tensor ops.
// - CudaDequantGemm: W without scales in the dtype (2x8: __hadd2-rounded), cuBLAS, x scale, + bias.
// - Triton: float32 products summed, x scale and + bias in float32, one rounding.
// cuBLAS and tl.sum leave the summation order open; those two emulate the exact sum rounded where
// the library rounds, and conformance/TOLERANCES.md bounds the order's effect.
#include "reference/aqlm_linear.hpp"

namespace qoracle {

// Throws Error naming the field when `layer`'s config or shape is one its GPU kernel cannot run
// (or, for in_features the library mis-strides or leaves uninitialized, would compute garbage).
void require_aqlm_gpu_kernel_fits(const AqlmLinear& layer);

// The input features aqlm's code1x16 kernels actually visit: their loop count divides the
// codes per row by 32*in_group_size instead of 32*8, which is right for in_group_size 8 only.
int aqlm_code1x16_covered_inputs(int in_features, int in_group_size);

Matrix aqlm_cuda_matvec(const AqlmLinear& layer, const Matrix& x, Dtype dtype);
Matrix aqlm_cuda_dequant_gemm(const AqlmLinear& layer, const Matrix& x, Dtype dtype);
Matrix aqlm_triton_gemv(const AqlmLinear& layer, const Matrix& x, Dtype dtype);

}  // namespace qoracle
