#pragma once
// HQQ bases from a fixture case (packed words, per-group scale and zero), their state after a
// merge or an unmerge, and the quantizer run on base/weight_float.
#include <map>
#include <optional>
#include <string>

#include "fixtures/format/fixture_case.hpp"
#include "reference/hqq_linear.hpp"

namespace qoracle::fixture_layers {

HqqLinear hqq_base_from(const FixtureCase& c);

// <prefix>_weight (dequantized), <prefix>_bias, <prefix>_codes, <prefix>_scale, <prefix>_zero.
void base_outputs(const HqqLinear& base, const std::string& prefix, std::map<std::string, Tensor>& out);

// The producer's own <prefix>_ state (expected/<prefix>_codes, _scale, _zero) as a layer with the
// base's config, compute dtype and bias, when the case records all three, well formed; nullopt otherwise.
std::optional<HqqLinear> producer_hqq_state(const HqqLinear& base, const FixtureCase& c, const std::string& prefix);

// quantized_codes, quantized_scale, quantized_zero: the quantizer on base/weight_float with the
// base's own config and arithmetic.
void quantizer_outputs(const HqqLinear& base, const FixtureCase& c, std::map<std::string, Tensor>& out);

}  // namespace qoracle::fixture_layers
