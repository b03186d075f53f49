#pragma once
// The GPU merge tests' adapters, one recipe for every base: `count` LoRA adapters (rank 4, alpha 8;
// lora_bias and DoRA as asked) or OFT adapters (block size 16, then 32 with the Neumann series;
// block_share as asked), float32-valued, in the math convention (where merging all of them at once,
// as the GPU does, keeps the forward).
#include <optional>
#include <string>
#include <vector>

#include "bench/layer_cases.hpp"  // AdapterKind
#include "reference/lora_linear.hpp"
#include "reference/oft_linear.hpp"
#include "reference/seeded_random.hpp"

namespace qoracle::testing {

struct MergeAdapters {
  bench::AdapterKind kind;
  int count;  // 1 or 2
  bool dora = false, lora_bias = false, block_share = false;
  double b_sd = 0.05;  // lora_B's spread (a huge one makes large merged weights)
};

inline std::vector<std::string> merge_adapter_names(const MergeAdapters& a) {
  std::vector<std::string> names = {"first", "second"};
  names.resize(static_cast<std::size_t>(a.count));
  return names;
}

template <class Base>
LoraLayer<Base> lora_to_merge(const Base& base, const MergeAdapters& a, SeededRandom& rng) {
  const int out = base.out_features(), in = base.in_features();
  LoraLayer<Base> layer(base, Convention::Math);
  for (const std::string& name : merge_adapter_names(a)) {
    LoraConfig config{.r = 4, .lora_alpha = 8};
    config.use_dora = a.dora;
    config.lora_bias = a.lora_bias;
    std::optional<Vector> b_bias, magnitude;
    if (a.lora_bias) b_bias = round_to(Dtype::Float32, Vector(rng.normal(out, 1, 0.1).col(0)));
    if (a.dora) magnitude = round_to(Dtype::Float32, Vector(rng.uniform(out, 1, 0.5, 1.5).col(0)));
    layer.add_adapter(name, config, round_to(Dtype::Float32, rng.normal(4, in, 0.1)),
                      round_to(Dtype::Float32, rng.normal(out, 4, a.b_sd)), b_bias, magnitude);
  }
  return layer;
}

template <class Base>
OftLayer<Base> oft_to_merge(const Base& base, const MergeAdapters& a, SeededRandom& rng) {
  OftLayer<Base> layer(base, Convention::Math);
  OftConfig config;
  config.block_share = a.block_share;
  const std::vector<std::string> names = merge_adapter_names(a);
  for (std::size_t k = 0; k < names.size(); ++k) {
    config.oft_block_size = k == 0 ? 16 : 32;
    config.use_cayley_neumann = k > 0;
    const OftBlocks blocks = resolve_oft_blocks(base.in_features(), config);
    layer.add_adapter(names[k], config,
                      round_to(Dtype::Float32, rng.normal(blocks.param_rows, blocks.n_elements, 0.03)));
  }
  return layer;
}

}  // namespace qoracle::testing
