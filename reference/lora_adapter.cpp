#include "reference/lora_adapter.hpp"

#include <cmath>

#include "reference/error.hpp"
#include "reference/float64_products.hpp"
#include "reference/validate.hpp"

namespace qoracle {

LoraAdapter::LoraAdapter(int in_features, int out_features, LoraConfig config, Matrix a, Matrix b,
                         std::optional<Vector> b_bias, std::optional<Vector> magnitude)
    : config_(config), a_(std::move(a)), b_(std::move(b)), b_bias_(std::move(b_bias)), magnitude_(std::move(magnitude)) {
  require_positive(config_.r, "r");
  if (!std::isfinite(config_.lora_alpha)) throw Error("lora_alpha: expected a finite value");
  if (config_.lora_bias && config_.use_dora)
    throw Error("lora_bias/use_dora: expected at most one of them enabled (PEFT rejects the combination)");
  require_shape(a_, config_.r, in_features, "lora_A");
  require_shape(b_, out_features, config_.r, "lora_B");
  require_finite(a_, "lora_A");
  require_finite(b_, "lora_B");
  if (config_.lora_bias != b_bias_.has_value())
    throw Error(std::string("lora_B_bias: expected ") + (config_.lora_bias ? "a bias because lora_bias is set"
                                                                           : "no bias because lora_bias is not set"));
  if (b_bias_) {
    require_size(*b_bias_, out_features, "lora_B_bias");
    require_finite(*b_bias_, "lora_B_bias");
  }
  if (magnitude_ && !config_.use_dora) throw Error("magnitude: given but use_dora is not set");
  if (magnitude_) {
    require_size(*magnitude_, out_features, "magnitude");
    require_finite(*magnitude_, "magnitude");
  }
}

double LoraAdapter::scaling() const {
  const double r = static_cast<double>(config_.r);
  return config_.use_rslora ? config_.lora_alpha / std::sqrt(r) : config_.lora_alpha / r;
}

Matrix LoraAdapter::delta_weight() const { return scaling() * (b_ * a_); }

std::optional<Vector> LoraAdapter::delta_bias() const {
  if (!b_bias_) return std::nullopt;
  return Vector(scaling() * *b_bias_);
}

Matrix LoraAdapter::unscaled_output(const Matrix& x) const {
  Matrix lora = (x * a_.transpose()) * b_.transpose();
  if (b_bias_) lora.rowwise() += b_bias_->transpose();
  return lora;
}

Matrix LoraAdapter::output(const Matrix& x) const { return scaling() * unscaled_output(x); }

Matrix LoraAdapter::output_float64(const Matrix& x) const {
  Matrix lora = times_transposed(times_transposed(x, a_), b_);
  if (b_bias_) lora.rowwise() += b_bias_->transpose();
  return scaling() * lora;
}

}  // namespace qoracle
