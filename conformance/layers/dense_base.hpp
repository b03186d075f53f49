#pragma once
// nn.Linear bases from a fixture case, and what a dense base is after a merge or an unmerge.
#include <map>
#include <optional>
#include <string>

#include "fixtures/format/fixture_case.hpp"
#include "reference/dense_linear.hpp"

namespace qoracle::fixture_layers {

// base/bias as a vector, when the case has one (every base kind may carry it).
std::optional<Vector> base_bias(const FixtureCase& c);

// base/weight [out, in] and the optional base/bias.
DenseLinear dense_base_from(const FixtureCase& c);

// <prefix>_weight and <prefix>_bias.
void base_outputs(const DenseLinear& base, const std::string& prefix, std::map<std::string, Tensor>& out);

}  // namespace qoracle::fixture_layers
