#pragma once
// Tolerances by dtype and output, each with its reason in conformance/TOLERANCES.md. Fixtures
// record the tolerance they were written with; this is where new fixtures get theirs.
#include <string>

#include "fixtures/format/fixture_case.hpp"
#include "reference/convention.hpp"

namespace qoracle {

Tolerance tolerance_for(Dtype dtype, const std::string& output, Convention convention);

// A computation done entirely in float32 (the LibTorch baseline: its own dequantization, rotation
// and matmuls) judged against the float64 oracle, for in_features <= 4096.
Tolerance float32_against_oracle();
// The k of the fp64-referee rule (compare.hpp, judge_against_oracle) for a low-precision dtype.
double oracle_factor(Dtype dtype);

}  // namespace qoracle
