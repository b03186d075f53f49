// The reference (Eigen, double) on every case of bench/layer_cases: what the oracle costs, and the
// "ours" row until optimized/ has CPU-visible kernels. Items are tokens (forward), layers (merge)
// or blocks (Cayley); bytes are the quantized weight bytes a forward reads.
#include <benchmark/benchmark.h>

#include <chrono>
#include <set>
#include <utility>

#include "bench/forward_counters.hpp"
#include "bench/layer_cases.hpp"
#include "reference/cayley.hpp"
#include "reference/eetq_merge.hpp"
#include "reference/float64_products.hpp"
#include "reference/skew.hpp"

namespace {

using namespace qoracle;
using namespace qoracle::bench;

void register_forward(const LayerCase& c) {
  with_base(c.base, [&]<class Base>() {
    benchmark::RegisterBenchmark(("reference/forward/" + c.name()).c_str(), [c](benchmark::State& state) {
      const Matrix x = activations(c.tokens, c.shape.in);
      // At 4096 features, OpenBLAS's dgemm of the same shape runs (untimed) before each forward:
      // counter dgemm_ms, measured under the same load as the row, for the ratio (issue 31).
      const bool beside_dgemm = c.shape.in >= 4096;
      const Matrix w = beside_dgemm ? base_layer<DenseLinear>(c.shape).weight() : Matrix();
      double dgemm_seconds = 0;
      auto run = [&](const auto& layer) {
        for (auto _ : state) {
          if (beside_dgemm) {
            state.PauseTiming();
            const auto t0 = std::chrono::steady_clock::now();
            benchmark::DoNotOptimize(times_transposed(x, w));
            dgemm_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            state.ResumeTiming();
          }
          benchmark::DoNotOptimize(layer.forward(x));
        }
        if (beside_dgemm) state.counters["dgemm_ms"] = 1e3 * dgemm_seconds / static_cast<double>(state.iterations());
      };
      if (c.adapter == AdapterKind::Oft)
        run(oft_layer<Base>(c.shape));
      else
        run(lora_layer<Base>(c.shape));
      set_forward_counters<Base>(state, c);
    })->Unit(benchmark::kMicrosecond);
  });
}

// OpenBLAS's dgemm, x (tokens, in) times W^T (W (out, in)), on as many cores as the reference
// uses: the row each forward of that shape is measured against (issue 31's goals).
void register_dgemm(LayerShape shape, int tokens) {
  const std::string name = "blas/dgemm/" + shape.name() + "/t" + std::to_string(tokens);
  benchmark::RegisterBenchmark(name.c_str(), [shape, tokens](benchmark::State& state) {
    const Matrix x = activations(tokens, shape.in);
    const Matrix w = base_layer<DenseLinear>(shape).weight();
    for (auto _ : state) benchmark::DoNotOptimize(times_transposed(x, w));
    state.SetItemsProcessed(state.iterations() * tokens);
  })->Unit(benchmark::kMicrosecond);
}

// One iteration: merge then unmerge (linear, HQQ), or EETQ's dequantize-merge-requantize export.
template <class Layer>
void merge_iteration(Layer& layer) {
  if constexpr (std::is_same_v<std::decay_t<decltype(layer.base())>, EetqLinear>) {
    benchmark::DoNotOptimize(eetq_merge_to_dequantized(layer, {"default"}));
  } else {
    layer.merge({"default"});
    layer.unmerge();
    benchmark::DoNotOptimize(layer.base());
  }
}

void register_merge(const MergeCase& c) {
  with_base(c.base, [&]<class Base>() {
    benchmark::RegisterBenchmark(("reference/merge/" + c.name()).c_str(), [c](benchmark::State& state) {
      auto run = [&](auto layer) {
        for (auto _ : state) merge_iteration(layer);
      };
      if (c.adapter == AdapterKind::Oft)
        run(oft_layer<Base>(c.features, Convention::Math));
      else
        run(lora_layer<Base>(c.features));
      state.SetItemsProcessed(state.iterations());
    })->Unit(benchmark::kMillisecond);
  });
}

void register_cayley(int b) {
  const Matrix s = skew_from_params(cayley_params(b), b);
  benchmark::RegisterBenchmark(("reference/cayley_exact/b" + std::to_string(b)).c_str(), [s](benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(cayley_exact(s));
    state.SetItemsProcessed(state.iterations());
  });
  benchmark::RegisterBenchmark(("reference/cayley_neumann/b" + std::to_string(b)).c_str(), [s](benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(cayley_neumann(s, 5, Convention::Peft));
    state.SetItemsProcessed(state.iterations());
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::set<std::pair<LayerShape, int>> gemm_shapes;
  for (const LayerCase& c : forward_cases()) {
    if (gemm_shapes.insert({c.shape, c.tokens}).second) register_dgemm(c.shape, c.tokens);
    register_forward(c);
  }
  for (const MergeCase& c : merge_cases()) register_merge(c);
  for (int b : cayley_block_sizes()) register_cayley(b);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
