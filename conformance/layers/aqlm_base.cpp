#include "conformance/layers/aqlm_base.hpp"

#include <cstdint>
#include <vector>

#include "conformance/layers/dense_base.hpp"
#include "conformance/layers/integer_data.hpp"
#include "reference/error.hpp"

namespace qoracle::fixture_layers {

AqlmLinear aqlm_base_from(const FixtureCase& c, Dtype dtype) {
  const Attributes& a = c.base.config;
  AqlmConfig cfg;
  cfg.in_group_size = static_cast<int>(a.get_int("in_group_size"));
  cfg.out_group_size = static_cast<int>(a.get_int("out_group_size"));
  cfg.num_codebooks = static_cast<int>(a.get_int("num_codebooks"));
  cfg.nbits_per_codebook = static_cast<int>(a.get_int("nbits_per_codebook"));
  const int out = static_cast<int>(a.get_int("out_features")), in = static_cast<int>(a.get_int("in_features"));
  const Tensor& codes = c.base.tensor("codes");
  if (codes.stored_type.empty()) throw Error("base/codes: expected integer codes (int8/int16, signed offset), got floats");
  aqlm_geometry(cfg, out, in);  // validates nbits_per_codebook before the shifts below use it
  std::vector<int> indices;
  indices.reserve(codes.values.size());
  for (std::int64_t stored : integer_values(codes, INT32_MIN, INT32_MAX, "base/codes")) {
    const std::int64_t half = std::int64_t{1} << (cfg.nbits_per_codebook - 1);
    if (stored < -half || stored >= 2 * half)
      throw Error("base/codes: stored value " + std::to_string(stored) + " cannot be a " +
                  std::to_string(cfg.nbits_per_codebook) + "-bit code");
    indices.push_back(aqlm_code_index(stored, cfg.nbits_per_codebook));
  }
  const Tensor& scales = c.base.tensor("scales");
  return AqlmLinear(cfg, out, in, std::move(indices), c.base.tensor("codebooks").values,
                    Eigen::Map<const Vector>(scales.values.data(), static_cast<Eigen::Index>(scales.values.size())),
                    base_bias(c), parse_dtype(a.get_string("dtype")),
                    dtype == Dtype::Float64 ? AqlmKernel::Exact : parse_aqlm_kernel(a.get_string("kernel")));
}

void base_outputs(const AqlmLinear& base, const std::string& prefix, std::map<std::string, Tensor>& out) {
  out[prefix + "_weight"] = Tensor::from_matrix(base.weight(), Dtype::Float64);
}

}  // namespace qoracle::fixture_layers
