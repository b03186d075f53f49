// Reference timings: what the oracle costs. Items are rotated rows or Cayley blocks.
#include <benchmark/benchmark.h>

#include "reference/seeded_random.hpp"
#include "reference/cayley.hpp"
#include "reference/oft_adapter.hpp"
#include "reference/skew.hpp"

namespace {

using namespace qoracle;

void cayley_exact_block(benchmark::State& state) {
  const int b = static_cast<int>(state.range(0));
  SeededRandom rng(7);
  const Matrix s = skew_from_params(rng.normal(skew_param_count(b), 1, 0.1).col(0), b);
  for (auto _ : state) benchmark::DoNotOptimize(cayley_exact(s));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(cayley_exact_block)->RangeMultiplier(2)->Range(8, 128);

void cayley_neumann_block(benchmark::State& state) {
  const int b = static_cast<int>(state.range(0));
  SeededRandom rng(7);
  const Matrix s = skew_from_params(rng.normal(skew_param_count(b), 1, 0.02).col(0), b);
  for (auto _ : state) benchmark::DoNotOptimize(cayley_neumann(s, 5, Convention::Math));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(cayley_neumann_block)->RangeMultiplier(2)->Range(8, 128);

void oft_rotate(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0)), tokens = static_cast<int>(state.range(1));
  SeededRandom rng(11);
  OftConfig cfg;
  cfg.oft_block_size = 32;
  const OftBlocks blocks = resolve_oft_blocks(n, cfg);
  const OftAdapter adapter(n, cfg, rng.normal(blocks.param_rows, blocks.n_elements, 0.01), Convention::Math);
  const Matrix x = rng.normal(tokens, n, 1.0);
  for (auto _ : state) benchmark::DoNotOptimize(adapter.rotate(x));
  state.SetItemsProcessed(state.iterations() * tokens);
}
BENCHMARK(oft_rotate)->Args({256, 1})->Args({256, 128})->Args({1024, 8});

}  // namespace

BENCHMARK_MAIN();
