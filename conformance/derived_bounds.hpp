#pragma once
// Allowances for the producer's own arithmetic where its error grows with the problem (block size,
// condition number, rank, width), computed per case from the reference's float64 quantities and
// added to the output's stored tolerance. Each formula is a forward-error bound of the operation
// PEFT performs; conformance/TOLERANCES.md ("Derived bounds") gives the derivations and the
// measurements behind the constants.
#include <string>
#include <vector>

#include "reference/dtype.hpp"
#include "reference/lora_adapter.hpp"
#include "reference/matrix.hpp"

namespace qoracle {

struct DerivedBound {
  double value = 0.0;  // an absolute allowance, added to atol + rtol * max|expected|
  std::string why;     // for messages: which computation and its parameters

  DerivedBound& operator+=(const DerivedBound& other);
};

// Higham's deterministic gamma_n = n u / (1 - n u): a recursive sum of n products.
double gamma_n(int n, double u);
// torch's float reductions on the CPU (vectorized lanes, then a cascade): (ceil(log2 n) + 2) u.
// Measured for float32 row norms: <= 7.5 u at n = 16384 (TOLERANCES.md).
double cascade_sum_error(int n, double u);

// PEFT's OFT unmerge: each block R_j is inverted in float32 (LU), W = W' (R^-1)^T, the product in
// `product_dtype`. |dW_oi| <= ||W'_o,j||_2 (b u32 kappa_2(R_j) ||R_j^-1||_2 + gamma_b(u_prod) ||R_j^-1||_2).
// `rotations`: each block's R as PEFT holds it; `merged`: the weight being unmerged.
DerivedBound float32_inverse_unmerge_bound(const std::vector<Matrix>& rotations, const Matrix& merged,
                                           Dtype product_dtype);

// W R^T (an OFT merge, or PEFT 0.17's unmerge by R) summed over b terms in `product_dtype`:
// gamma_b(u) max_oi sum_k |W_ok| |R_ik|.
DerivedBound rotation_product_bound(const std::vector<Matrix>& rotations, const Matrix& weight, Dtype product_dtype);

// s B A as PEFT computes it in `adapter_dtype` (r products, the product and the scaling rounded),
// against the exact delta: (gamma_r(u) + 2u) s max_oi (|B| |A|)_oi; plus, where the delta is cast to
// a 16-bit weight dtype before it is subtracted, 2 u(weight) max|delta| (one flipped rounding).
DerivedBound lora_delta_bound(const LoraAdapter& adapter, Dtype adapter_dtype, Dtype rounded_to = Dtype::Float64);

// DoRA's factor g = m / ||W + s B A||_o in float32: the row norm (cascade_sum_error over `in`
// squares), its square root and the division, relative (cascade + 2u); the merged weight
// g (W + dW) moves by that share of max|g (W + dW)|, the unmerged one W'/g by that of max|W'/g|.
DerivedBound dora_factor_bound(int in_features, Dtype adapter_dtype, double max_magnitude);

// aqlm's 16-bit CPU forward (dequantize, then torch's half GEMM): bit-identical to the emulation on
// the committed shapes, but torch's GEMM blocks its float32 sum by shape (the live sweep saw one-ulp
// flips at K = 64 with 48 outputs, and at K = 256), so one rounding can flip: one ulp of the largest
// output, 2 u(dtype) max|y|. A lost rounding of W still shows in dequantized_weight, which is exact.
DerivedBound half_gemm_flip_bound(Dtype dtype, double max_abs);

}  // namespace qoracle
