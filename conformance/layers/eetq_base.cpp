#include "conformance/layers/eetq_base.hpp"

#include <cstdint>
#include <vector>

#include "conformance/case_runner.hpp"
#include "conformance/layers/dense_base.hpp"
#include "conformance/layers/integer_data.hpp"
#include "reference/error.hpp"

namespace qoracle {

EetqLinear eetq_from_checkpoint_tensors(const Tensor& weight, const Tensor& scales, std::optional<Vector> bias,
                                        EetqLayout layout, EetqKernel kernel, const std::string& where) {
  if (weight.stored_type != "int8" || weight.shape.size() != 2)
    throw Error(where + "/weight: expected the checkpoint's int8 [in, out] bytes, got " +
                (weight.stored_type.empty() ? std::string("floating-point data") : weight.stored_type) + " of shape " +
                weight.shape_string());
  if (scales.logical_dtype != Dtype::Float16)
    throw Error(where + "/weight_scales: expected float16 (EETQ's scale dtype), got " + dtype_name(scales.logical_dtype));
  std::vector<std::int8_t> bytes;
  for (std::int64_t v : fixture_layers::integer_values(weight, INT8_MIN, INT8_MAX, where + "/weight"))
    bytes.push_back(static_cast<std::int8_t>(v));
  try {
    return EetqLinear::from_checkpoint(bytes, static_cast<int>(weight.shape[0]), static_cast<int>(weight.shape[1]), layout,
                                       scales.as_vector(where + "/weight_scales"), std::move(bias), kernel);
  } catch (const Error& e) {
    throw e.within(where);
  }
}

namespace fixture_layers {

EetqLinear eetq_base_from(const FixtureCase& c, Dtype dtype) {
  const Attributes& a = c.base.config;
  const int out = static_cast<int>(a.get_int("out_features")), in = static_cast<int>(a.get_int("in_features"));
  const Tensor& weight = c.base.tensor("weight");
  if (weight.shape != std::vector<std::int64_t>{in, out})
    throw Error("base/weight: expected shape [" + std::to_string(in) + ", " + std::to_string(out) +
                "] ([in, out], as EETQ stores it), got " + weight.shape_string());
  return eetq_from_checkpoint_tensors(weight, c.base.tensor("weight_scales"), base_bias(c),
                                      parse_eetq_layout(a.get_string("layout")),
                                      dtype == Dtype::Float64 ? EetqKernel::Exact : parse_eetq_kernel(a.get_string("kernel")),
                                      "base");
}

void base_outputs(const EetqLinear& base, const std::string& prefix, std::map<std::string, Tensor>& out) {
  out[prefix + "_weight"] = Tensor::from_matrix(base.weight(), Dtype::Float64);
}

void quantizer_outputs(const EetqLinear&, const FixtureCase& c, std::map<std::string, Tensor>& out) {
  const Tensor& w = c.base.tensor("weight_float");
  const EetqQuantized q = eetq_quantize(w.as_matrix("base/weight_float"), w.logical_dtype);
  out["quantized_codes"] = codes_tensor(q.q);
  out["quantized_scale"] = Tensor::from_vector(q.scales, w.logical_dtype);
}

Tensor decoded_codes(const EetqLinear& base) { return codes_tensor(base.quantized().q); }

}  // namespace fixture_layers
}  // namespace qoracle
