// The merged weight on the host, and what every merge shares: the adapter check and the layer after it.
#include "optimized/merge/merged_weight.hpp"

#include <string>
#include <utility>
#include <variant>

#include "optimized/layer/layer_checks.hpp"
#include "optimized/layer/fused_views.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

void check_merge_adapters(const HostLayer& l, const char* merge) {
  if (l.oft.empty() == (l.rank == 0))
    throw Error(std::string("adapter: ") + merge + " needs LoRA or OFT adapters, not both and not neither (oft: " +
                std::to_string(l.oft.size()) + " adapters, lora rank: " + std::to_string(l.rank) + ")");
}

template <class Weights>
const Weights& check_merge_base(const HostLayer& l, const char* merge, const char* base) {
  check_fused_layer(l, static_cast<std::size_t>(l.in_features), 1);
  const auto* w = std::get_if<Weights>(&l.weights);
  if (!w) throw Error(std::string("base: ") + merge + " needs " + base);
  check_merge_adapters(l, merge);
  return *w;
}
template const DenseWeights& check_merge_base<DenseWeights>(const HostLayer&, const char*, const char*);
template const HqqWeights& check_merge_base<HqqWeights>(const HostLayer&, const char*, const char*);
template const EetqWeights& check_merge_base<EetqWeights>(const HostLayer&, const char*, const char*);

void check_lora_bias_target(const HostLayer& l) {
  if (!l.lora_bias.empty() && l.bias.empty())
    throw Error("bias: lora_bias needs a base bias to merge into, and the layer has none (as the reference's merge)");
}

std::vector<float> merged_weight_on_host(const HostLayer& l) {
  std::vector<float> merged(static_cast<std::size_t>(l.out_features) * l.in_features), previous;
  auto fill = [&](auto&& element) {
    for (int o = 0; o < l.out_features; ++o)
      for (int i = 0; i < l.in_features; ++i) merged[static_cast<std::size_t>(o) * l.in_features + i] = element(o, i);
  };
  std::visit(
      [&](const auto& weights) {
        const auto view = make_view(weights, l, [](const auto& v) { return v.data(); });
        if (l.rank > 0) {
          const LoraMergeTerms terms = lora_merge_terms(l, l.lora_a.data(), l.lora_b.data(), l.dot_scale.data());
          fill([&](int o, int i) { return merged_lora_element(view, o, i, terms); });
          return;
        }
        // The last adapter rotates the stored weight, each earlier one the result so far.
        for (std::size_t k = l.oft.size(); k-- > 0;) {
          const std::vector<float> blocks = rotation_blocks_on_host(l.oft[k]);
          const RotationBlocks rot = rotation_blocks(blocks.data(), l.oft[k].block_size, l.oft[k].block_share);
          merged.swap(previous);
          merged.resize(previous.size());
          if (k + 1 == l.oft.size())
            fill([&](int o, int i) { return merged_oft_element(view, o, i, rot); });
          else
            fill([&](int o, int i) { return merged_oft_element(DenseView{previous.data(), l.in_features}, o, i, rot); });
        }
      },
      l.weights);
  return merged;
}

HostLayer layer_after_merge(const HostLayer& l, HostWeights weights) {
  HostLayer out;
  out.out_features = l.out_features;
  out.in_features = l.in_features;
  out.activations = l.activations;
  out.bias = l.bias;
  for (std::size_t o = 0; o < l.lora_bias.size(); ++o) out.bias[o] += l.scaling * l.lora_bias[o];
  out.weights = std::move(weights);
  return out;
}

}  // namespace qoracle::optimized
