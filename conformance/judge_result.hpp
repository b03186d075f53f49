#pragma once
// A result computed its own way -- the fused kernels, a user's kernel through the Python package --
// judged against the float64 oracle as conformance/TOLERANCES.md says for results that do not
// repeat the producer's roundings:
//   computed in float16/bfloat16: the fp64 referee (k = oracle_factor) with the producer's own result
//     in that dtype as its baseline, and every value a value of the dtype;
//   float32: float32_against_oracle();
//   float64: tolerance_for(float64, output, convention) against the oracle.
#include "conformance/case_runner.hpp"

namespace qoracle {

// `row` names the case (case_row) and the output ("forward", or "forward@<path>": the part before
// '@' picks the float64 tolerance). Shapes of oracle, producer and result must agree.
CheckRow judge_result(CheckRow row, Dtype dtype, const Tensor& oracle, const Tensor& producer, const Tensor& result);

}  // namespace qoracle
