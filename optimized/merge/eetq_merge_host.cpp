// eetq_merge's host emulation, and what both paths share.
#include <cmath>
#include <cstddef>
#include <sstream>
#include <string>

#include "optimized/device/activation_io.hpp"
#include "optimized/merge/eetq_merge.hpp"
#include "optimized/merge/eetq_requantize.hpp"
#include "optimized/layer/fused_views.hpp"
#include "optimized/merge/merged_weight.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

const EetqWeights& check_eetq_merge(const HostLayer& l) {
  const EetqWeights& base = check_merge_base<EetqWeights>(l, "eetq_merge", "an EETQ layer");
  check_lora_bias_target(l);
  return base;
}

void refuse_unstorable_weight(const HostLayer& l, long long flat, float value) {
  throw Error("merged weight: element [" + std::to_string(flat / l.in_features) + ", " +
              std::to_string(flat % l.in_features) + "] = " + (std::ostringstream() << value).str() +
              " does not fit float16 (finite, |w| < 65520), the dtype EETQ stores weights and scales in");
}

HostLayer eetq_merged_layer(const HostLayer& l, EetqWeights weights) {
  HostLayer out = layer_after_merge(l, std::move(weights));
  out.bias = round_activations(out.bias, Activations::Float16);
  return out;
}

EetqView eetq_layout_of(const HostLayer& l, const EetqWeights& base) {
  return make_view(base, l, [](const auto&) { return nullptr; });
}

HostLayer eetq_merge_on_host(const HostLayer& l) {
  const EetqWeights& base = check_eetq_merge(l);
  const std::vector<float> merged = merged_weight_on_host(l);
  EetqWeights out{std::vector<std::int8_t>(merged.size()), std::vector<float>(l.out_features), base.layout};
  const EetqView layout = eetq_layout_of(l, base);
  for (int o = 0; o < l.out_features; ++o) {
    const float* row = merged.data() + static_cast<std::size_t>(o) * l.in_features;
    float amax = 0.0f;
    for (int i = 0; i < l.in_features; ++i) {
      const float stored = round_to_half(row[i]);
      if (!std::isfinite(stored)) refuse_unstorable_weight(l, static_cast<long long>(o) * l.in_features + i, row[i]);
      amax = std::fmax(amax, std::fabs(stored));
    }
    const float scale32 = eetq_scale32(amax);
    out.scales[o] = round_to_half(scale32);
    for (int i = 0; i < l.in_features; ++i)
      out.bytes[layout.offset(o, i)] = EetqView::stored_byte(eetq_code(round_to_half(row[i]), scale32), layout.layout);
  }
  return eetq_merged_layer(l, std::move(out));
}

}  // namespace qoracle::optimized
