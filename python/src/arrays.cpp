#include "arrays.hpp"

#include <nanobind/ndarray.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <vector>

#include "reference/error.hpp"

namespace qoracle::python {

namespace {

using AnyArray = nb::ndarray<nb::ro, nb::device::cpu>;
using Code = nb::dlpack::dtype_code;

// Stored integer types: the fixture format's codes and packed words (SCHEMA.md), and what the reader yields.
struct IntegerType {
  Code code;
  int bits;
};
const std::map<std::string, IntegerType>& integer_types() {
  static const std::map<std::string, IntegerType> types{{"uint8", {Code::UInt, 8}},   {"int8", {Code::Int, 8}},
                                                        {"uint16", {Code::UInt, 16}}, {"int16", {Code::Int, 16}},
                                                        {"uint32", {Code::UInt, 32}}, {"int32", {Code::Int, 32}}};
  return types;
}

std::string dtype_text(nb::dlpack::dtype d) {
  const char* kind = d.code == static_cast<std::uint8_t>(Code::Int)     ? "int"
                     : d.code == static_cast<std::uint8_t>(Code::UInt)  ? "uint"
                     : d.code == static_cast<std::uint8_t>(Code::Float) ? "float"
                     : d.code == static_cast<std::uint8_t>(Code::Bfloat) ? "bfloat"
                     : d.code == static_cast<std::uint8_t>(Code::Bool)  ? "bool"
                                                                         : "complex";
  return std::string(kind) + std::to_string(d.bits);
}

// One element at `p` as a double: exact for every accepted dtype.
double element(const std::uint8_t* p, nb::dlpack::dtype d) {
  const auto code = static_cast<Code>(d.code);
  auto load = [p]<class T>(T) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  if (code == Code::Float && d.bits == 64) return load(double{});
  if (code == Code::Float && d.bits == 32) return load(float{});
  if (code == Code::Float && d.bits == 16) return half_bits_to_float(load(std::uint16_t{}));
  if (code == Code::Bfloat && d.bits == 16) return bfloat16_bits_to_float(load(std::uint16_t{}));
  if (code == Code::UInt && d.bits == 8) return load(std::uint8_t{});
  if (code == Code::Int && d.bits == 8) return load(std::int8_t{});
  if (code == Code::UInt && d.bits == 16) return load(std::uint16_t{});
  if (code == Code::Int && d.bits == 16) return load(std::int16_t{});
  if (code == Code::UInt && d.bits == 32) return load(std::uint32_t{});
  return load(std::int32_t{});  // Int 32, the last accepted type
}

Tensor tensor_from_array(const AnyArray& a, const std::string& field) {
  const nb::dlpack::dtype d = a.dtype();
  Tensor t;
  const auto code = static_cast<Code>(d.code);
  if (d.lanes != 1) throw Error(field + ": expected an array of scalars, got vector lanes");
  if (code == Code::Float && (d.bits == 64 || d.bits == 32 || d.bits == 16)) {
    t.logical_dtype = d.bits == 64 ? Dtype::Float64 : d.bits == 32 ? Dtype::Float32 : Dtype::Float16;
  } else if (code == Code::Bfloat && d.bits == 16) {
    t.logical_dtype = Dtype::BFloat16;
  } else {
    for (const auto& [name, type] : integer_types())
      if (type.code == code && type.bits == d.bits) t.stored_type = name;
    if (t.stored_type.empty())
      throw Error(field + ": expected float64, float32, float16 or bfloat16 values, or uint8/int8/uint16/int16/uint32/int32 "
                  "integer data, got " + dtype_text(d));
  }
  const std::size_t rank = a.ndim(), item = a.itemsize();
  std::size_t count = 1;
  for (std::size_t i = 0; i < rank; ++i) {
    t.shape.push_back(static_cast<std::int64_t>(a.shape(i)));
    count *= a.shape(i);
  }
  t.values.resize(count);
  // Walk the elements in row-major order through the array's own strides (in elements).
  std::vector<std::size_t> index(rank, 0);
  const auto* base = static_cast<const std::uint8_t*>(a.data());
  for (std::size_t n = 0; n < count; ++n) {
    std::int64_t offset = 0;
    for (std::size_t i = 0; i < rank; ++i) offset += static_cast<std::int64_t>(index[i]) * a.stride(i);
    t.values[n] = element(base + offset * static_cast<std::int64_t>(item), d);
    for (std::size_t i = rank; i-- > 0;) {
      if (++index[i] < a.shape(i)) break;
      index[i] = 0;
    }
  }
  return t;
}

template <class T>
nb::object owned_array(const Tensor& t) {
  auto* data = new std::vector<T>(t.values.begin(), t.values.end());
  nb::capsule owner(data, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  std::vector<std::size_t> shape(t.shape.begin(), t.shape.end());
  return nb::cast(nb::ndarray<nb::numpy, T>(data->data(), shape.size(), shape.data(), owner));
}

}  // namespace

bool is_scalar(nb::handle obj) {
  if (nb::isinstance<nb::bool_>(obj) || nb::isinstance<nb::int_>(obj) || nb::isinstance<nb::float_>(obj) ||
      nb::isinstance<nb::str>(obj))
    return true;
  AnyArray a;
  return nb::try_cast(obj, a, false) && a.ndim() == 0;
}

Tensor tensor_from_object(nb::handle obj, const std::string& field) {
  if (obj.is_none()) throw Error(field + ": expected an array, got None");
  if (nb::isinstance<nb::str>(obj)) throw Error(field + ": expected an array, got a string");
  AnyArray a;
  if (!nb::try_cast(obj, a, false)) {
    // Not a CPU array through DLPack or the buffer protocol: what numpy.asarray makes of it
    // (objects with __array__, nested lists).
    nb::object converted;
    try {
      converted = nb::module_::import_("numpy").attr("asarray")(obj);
    } catch (const nb::python_error& e) {
      throw Error(field + ": expected an array (numpy, a CPU tensor, anything numpy.asarray takes), got " +
                  nb::type_name(obj.type()).c_str() + " (" + e.what() + ")");
    }
    if (!nb::try_cast(converted, a, false))
      throw Error(field + ": expected an array of numbers, got " + std::string(nb::type_name(obj.type()).c_str()));
  }
  return tensor_from_array(a, field);
}

nb::object array_from_tensor(const Tensor& t) {
  if (t.stored_type.empty()) return owned_array<double>(t);
  const IntegerType type = integer_types().count(t.stored_type) ? integer_types().at(t.stored_type) : IntegerType{Code::Int, 64};
  switch (type.bits * (type.code == Code::Int ? -1 : 1)) {
    case 8: return owned_array<std::uint8_t>(t);
    case -8: return owned_array<std::int8_t>(t);
    case 16: return owned_array<std::uint16_t>(t);
    case -16: return owned_array<std::int16_t>(t);
    case 32: return owned_array<std::uint32_t>(t);
    case -32: return owned_array<std::int32_t>(t);
    default: return owned_array<std::int64_t>(t);
  }
}

}  // namespace qoracle::python
