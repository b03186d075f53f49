#pragma once
// What every forward benchmark reports beside its time, the same for the reference, the LibTorch
// baseline and the optimized kernels so their rates compare: items are tokens, bytes are the
// quantized weight bytes a forward reads (bench/layer_cases weight_bytes).
#include <benchmark/benchmark.h>

#include <cstdint>

#include "bench/layer_cases.hpp"

namespace qoracle::bench {

template <class Base>
void set_forward_counters(benchmark::State& state, const LayerCase& c) {
  state.SetItemsProcessed(state.iterations() * c.tokens);
  state.SetBytesProcessed(
      static_cast<std::int64_t>(static_cast<double>(state.iterations()) * weight_bytes(base_layer<Base>(c.shape))));
}

}  // namespace qoracle::bench
