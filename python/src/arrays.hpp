#pragma once
// Arrays across the boundary: any CPU array Python hands over (numpy, torch through DLPack, anything
// numpy.asarray takes) becomes a fixture Tensor, and a Tensor goes back as a numpy array.
#include <nanobind/nanobind.h>

#include <string>

#include "fixtures/format/tensor.hpp"

namespace qoracle::python {

namespace nb = nanobind;

// Floats keep their logical dtype (float16/bfloat16 widened exactly); uint8/int8/uint16/int16/uint32/
// int32 arrays are exact integer data (codes, packed words) and keep their type. Any other dtype, a
// GPU array or something that is no array throws Error naming `field` and what it expected.
Tensor tensor_from_object(nb::handle obj, const std::string& field);

// Whether `obj` is a scalar (bool, int, float, str, or a 0-d array): a group's attribute, not a tensor.
bool is_scalar(nb::handle obj);

// float64 values for floating-point tensors; the stored integer type for integer ones.
nb::object array_from_tensor(const Tensor& t);

}  // namespace qoracle::python
