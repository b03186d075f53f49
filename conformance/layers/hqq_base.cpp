#include "conformance/layers/hqq_base.hpp"

#include <cstdint>

#include "conformance/layers/dense_base.hpp"
#include "conformance/layers/integer_data.hpp"
#include "reference/error.hpp"

namespace qoracle::fixture_layers {

HqqLinear hqq_base_from(const FixtureCase& c) {
  const Attributes& a = c.base.config;
  HqqConfig cfg;
  cfg.nbits = static_cast<int>(a.get_int("nbits"));
  cfg.group_size = static_cast<int>(a.get_int("group_size"));
  cfg.axis = static_cast<int>(a.get_int("axis"));
  cfg.round_zero = a.get_bool("round_zero");
  cfg.optimize = a.get_bool("optimize", true);
  const int out = static_cast<int>(a.get_int("out_features")), in = static_cast<int>(a.get_int("in_features"));
  const Dtype compute = parse_dtype(a.get_string("compute_dtype"));
  HqqArithmetic arith;
  try {
    arith = parse_hqq_arithmetic(a.get_string("quantizer_arithmetic", "float64"));
  } catch (const Error& e) {
    throw e.within("base");
  }
  const HqqGrouping g = hqq_grouping(cfg, out, in);

  const Tensor& wq = c.base.tensor("W_q");
  const std::string want = cfg.nbits == 3 ? "int32" : "uint8";
  if (wq.stored_type != want)
    throw Error("base/W_q: expected " + want + " words for " + hqq_packing_name(cfg.nbits) + ", got " +
                (wq.stored_type.empty() ? "floating-point data" : wq.stored_type));
  if (wq.shape.size() != 2) throw Error("base/W_q: expected rank 2, got shape " + wq.shape_string());
  HqqPacked packed;
  packed.rows = static_cast<int>(wq.shape[0]);
  packed.cols = static_cast<int>(wq.shape[1]);
  packed.word_bits = cfg.nbits == 3 ? 32 : 8;
  const bool int32_words = cfg.nbits == 3;
  for (std::int64_t v : integer_values(wq, int32_words ? INT32_MIN : 0, int32_words ? INT32_MAX : UINT8_MAX, "base/W_q"))
    packed.words.push_back(static_cast<std::uint32_t>(v));  // int32 words keep their bits
  auto per_group = [&](const char* name) {
    const Tensor& t = c.base.tensor(name);
    if (t.element_count() != g.groups)
      throw Error(std::string("base/") + name + ": expected " + std::to_string(g.groups) + " values (one per group), got shape " +
                  t.shape_string());
    return Vector(Eigen::Map<const Vector>(t.values.data(), g.groups));
  };
  return HqqLinear::from_packed(cfg, out, in, packed, per_group("scale"), per_group("zero"), base_bias(c), compute, arith);
}

void base_outputs(const HqqLinear& base, const std::string& prefix, std::map<std::string, Tensor>& out) {
  out[prefix + "_weight"] = Tensor::from_matrix(base.weight(), Dtype::Float64);
  if (base.bias()) out[prefix + "_bias"] = Tensor::from_vector(*base.bias(), Dtype::Float64);
  out[prefix + "_codes"] = codes_tensor(base.quantized().codes);
  out[prefix + "_scale"] = Tensor::from_vector(base.quantized().scale, Dtype::Float64);
  out[prefix + "_zero"] = Tensor::from_vector(base.quantized().zero, Dtype::Float64);
}

void quantizer_outputs(const HqqLinear& base, const FixtureCase& c, std::map<std::string, Tensor>& out) {
  const Matrix w = c.base.tensor("weight_float").as_matrix("base/weight_float");
  const HqqQuantized q = hqq_quantize(w, base.quantized().config, base.requantize_arithmetic());
  out["quantized_codes"] = codes_tensor(q.codes);
  out["quantized_scale"] = Tensor::from_vector(q.scale, Dtype::Float64);  // as the quantizer returns them,
  out["quantized_zero"] = Tensor::from_vector(q.zero, Dtype::Float64);    // before HQQLinear's cast
}

}  // namespace qoracle::fixture_layers

namespace qoracle::fixture_layers {

std::optional<HqqLinear> producer_hqq_state(const HqqLinear& base, const FixtureCase& c, const std::string& prefix) {
  const ExpectedOutput *codes = nullptr, *scale = nullptr, *zero = nullptr;
  for (const auto& e : c.expected) {
    if (e.name == prefix + "_codes") codes = &e;
    if (e.name == prefix + "_scale") scale = &e;
    if (e.name == prefix + "_zero") zero = &e;
  }
  if (!codes || !scale || !zero) return std::nullopt;
  const HqqQuantized& now = base.quantized();
  HqqQuantized q;
  q.config = now.config;
  q.out_features = now.out_features;
  q.in_features = now.in_features;
  // A malformed recorded state is not used: its own rows fail on it instead.
  if (codes->value.shape != std::vector<std::int64_t>{now.codes.rows(), now.codes.cols()} ||
      scale->value.element_count() != now.scale.size() || zero->value.element_count() != now.zero.size())
    return std::nullopt;
  const std::string field = "expected/" + prefix + "_codes";
  std::vector<std::int64_t> values;
  try {
    values = integer_values(codes->value, 0, (1 << now.config.nbits) - 1, field);
  } catch (const Error&) {
    return std::nullopt;
  }
  q.codes = CodeMatrix(now.codes.rows(), now.codes.cols());
  for (Eigen::Index i = 0; i < q.codes.size(); ++i) q.codes.data()[i] = static_cast<int>(values[static_cast<std::size_t>(i)]);
  q.scale = scale->value.as_vector("expected/" + prefix + "_scale");
  q.zero = zero->value.as_vector("expected/" + prefix + "_zero");
  try {
    return HqqLinear(std::move(q), base.bias(), base.compute_dtype(), base.requantize_arithmetic());
  } catch (const Error&) {
    return std::nullopt;  // e.g. a non-finite scale: the merged_* rows say so
  }
}

}  // namespace qoracle::fixture_layers
