#pragma once
// HQQ's quantizer (hqq 0.2.8.post1 Quantizer.quantize with the legacy proximal optimizer; spec
// hqq.md §2). Two arithmetics: Float64 is the oracle; Float32Cpu follows the library's CPU path
// (every elementwise step rounded to float32 in the library's order, group and global means
// accumulated exactly and rounded once) so its codes match what hqq writes.
#include "reference/dtype.hpp"
#include "reference/hqq_format.hpp"

namespace qoracle {

enum class HqqArithmetic { Float64, Float32Cpu };
const char* hqq_arithmetic_name(HqqArithmetic a);
HqqArithmetic parse_hqq_arithmetic(const std::string& name);  // "float64" | "float32-cpu"

struct HqqQuantized {
  HqqConfig config;
  int out_features = 0, in_features = 0;
  CodeMatrix codes;  // the grouped (R, C) code matrix
  Vector scale;      // per group: the dequantization multiplier (1 / inv)
  Vector zero;       // per group, in code units (a float, not an integer)
  int steps = 0;     // optimizer steps executed (all groups stop together: the error is global)
};

// Throws Error for a bad config or shape (hqq_grouping) and for non-finite weights.
HqqQuantized hqq_quantize(const Matrix& weight, const HqqConfig& config, HqqArithmetic arithmetic);

// W = rnd(rnd(Q - z) * s) in `compute` (two roundings, as hqq), reshaped to (out, in). The scale
// and zero are first cast to `compute`, as HQQLinear does.
Matrix hqq_dequantize(const HqqQuantized& q, Dtype compute);

}  // namespace qoracle
