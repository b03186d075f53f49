#pragma once
// A fixture case as a Python dict (a "layer spec"), in the layout of fixtures/SCHEMA.md: the case's
// attributes as keys; base and each adapter a dict whose scalars are the group's attributes and
// whose arrays are its datasets; x; expected outputs with their tolerances.
#include <nanobind/nanobind.h>

#include "fixtures/format/fixture_case.hpp"

namespace qoracle::python {

namespace nb = nanobind;

// The keys a spec may hold; any other key is an error (a typo should not pass silently).
//   layer_kind (required), base (required), x (required), adapters, active_adapters (default: every
//   adapter, in order), merge_adapters, dtype (default float64), convention (default math), name,
//   seed, producer, producer_versions, description, expected {output: array}, tolerances
//   {output: {atol, rtol, max_mismatch_fraction}} (default: tolerance_for_output), logical_dtypes
//   {"base/weight": "bfloat16", ...} (default: each array's own dtype). Gradient cases: training
//   (bool), grad_output (G = dL/dy), dropout_noise {adapter: nu}, peft_grad_none [output names].
FixtureCase case_from_spec(nb::handle spec);

// The same dict back: arrays as array_from_tensor makes them, logical_dtypes for every float tensor.
nb::dict case_to_spec(const FixtureCase& c);

// Pieces of case_to_spec that the Case class shows on their own.
nb::dict group_dict(const Attributes& config, const std::map<std::string, Tensor>& tensors);
nb::dict adapters_dict(const FixtureCase& c);
nb::dict expected_dict(const FixtureCase& c);
nb::dict tolerances_dict(const FixtureCase& c);
nb::dict dropout_noise_dict(const FixtureCase& c);
nb::list peft_grad_none_list(const FixtureCase& c);
nb::dict logical_dtypes_dict(const FixtureCase& c);

}  // namespace qoracle::python
