#pragma once
// AQLM bases from a fixture case (codes, codebooks, scales) and their state after a merge.
#include <map>
#include <string>

#include "fixtures/format/fixture_case.hpp"
#include "reference/aqlm_linear.hpp"

namespace qoracle::fixture_layers {

// dtype: the compute dtype the layer is built for (float64: the oracle, which runs the exact math).
AqlmLinear aqlm_base_from(const FixtureCase& c, Dtype dtype);

// <prefix>_weight (dequantized).
void base_outputs(const AqlmLinear& base, const std::string& prefix, std::map<std::string, Tensor>& out);

}  // namespace qoracle::fixture_layers
