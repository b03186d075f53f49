#pragma once
// Tolerances by dtype and output, each with its reason in conformance/TOLERANCES.md. Fixtures
// record the tolerance they were written with; this is where new fixtures get theirs.
#include <string>

#include "fixtures/format/fixture_case.hpp"
#include "reference/convention.hpp"

namespace qoracle {

Tolerance tolerance_for(Dtype dtype, const std::string& output, Convention convention);

// What a new fixture of a live layer (the Python package's export_case) writes next to `output`:
// tolerance_for, plus the quantized layers' allowances of TOLERANCES.md (codes may flip in 1e-4 of
// the elements; an HQQ zero in group_size times that share of groups; a requantized HQQ layer's
// weights in that share; AQLM's float16/bfloat16 forwards bit-exact). `dtype` is the value's own
// dtype where it is a float (PEFT keeps adapters, and so delta weights, in float32), else the case's.
// The exporter's tolerance() (fixtures/export/export_peft.py) follows the same table.
Tolerance tolerance_for_output(const std::string& layer_kind, Dtype dtype, const std::string& output,
                               Convention convention, int group_size);

// A computation done entirely in float32 (the LibTorch baseline: its own dequantization, rotation
// and matmuls) judged against the float64 oracle, for in_features <= 4096.
Tolerance float32_against_oracle();
// The k of the fp64-referee rule (compare.hpp, judge_against_oracle) for a low-precision dtype.
double oracle_factor(Dtype dtype);

}  // namespace qoracle
