#pragma once
// EETQ bases from a fixture case (the checkpoint's int8 bytes in a layout, float16 scales), their
// state after a merge, the quantizer on base/weight_float and the codes the layout decodes to.
// eetq_from_checkpoint_tensors itself is public (conformance/case_runner.hpp).
#include <map>
#include <string>

#include "fixtures/format/fixture_case.hpp"
#include "reference/eetq_linear.hpp"

namespace qoracle::fixture_layers {

// dtype: the compute dtype the layer is built for (float64: the exact kernel).
EetqLinear eetq_base_from(const FixtureCase& c, Dtype dtype);

// <prefix>_weight (dequantized).
void base_outputs(const EetqLinear& base, const std::string& prefix, std::map<std::string, Tensor>& out);

// quantized_codes, quantized_scale: EETQ's quantizer on base/weight_float.
void quantizer_outputs(const EetqLinear& base, const FixtureCase& c, std::map<std::string, Tensor>& out);

// decoded_codes: the codes the layer holds after decoding the checkpoint's byte layout.
Tensor decoded_codes(const EetqLinear& base);

}  // namespace qoracle::fixture_layers
