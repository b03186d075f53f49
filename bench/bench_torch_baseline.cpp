// The LibTorch baseline (bench/torch_baseline: ATen ops in PEFT's order, float32) on the same
// cases as bench_reference, under the same names with "torch/" in front, so one run gives the
// ratio. One intra-op thread unless QORACLE_TORCH_THREADS says more (run-benchmarks.sh: every
// core, as the reference uses).
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "bench/forward_counters.hpp"
#include "bench/layer_cases.hpp"
#include "bench/torch_baseline/peft_like.hpp"

namespace {

using namespace qoracle;
using namespace qoracle::bench;
using namespace qoracle::torch_baseline;

void register_forward(const LayerCase& c) {
  with_base(c.base, [&]<class Base>() {
    benchmark::RegisterBenchmark(("torch/forward/" + c.name()).c_str(), [c](benchmark::State& state) {
      const at::Tensor x = to_tensor(activations(c.tokens, c.shape.in));
      auto run = [&](const auto& layer) {
        for (auto _ : state) benchmark::DoNotOptimize(layer.forward(x));
      };
      if (c.adapter == AdapterKind::Oft)
        run(TorchOftLinear(oft_layer<Base>(c.shape), "default"));
      else
        run(TorchLoraLinear(lora_layer<Base>(c.shape), "default"));
      set_forward_counters<Base>(state, c);
    })->Unit(benchmark::kMicrosecond);
  });
}

// PEFT's merges: into nn.Linear (OFT and LoRA) and HqqLoraLinear (requantizing with hqq's
// quantizer). PEFT's HqqOFTLinear.merge raises, and it refuses EETQ and AQLM merges.
void register_merge(const MergeCase& c) {
  const bool peft_merges = c.base == BaseFormat::Linear || (c.base == BaseFormat::Hqq && c.adapter == AdapterKind::Lora);
  if (!peft_merges) return;
  benchmark::RegisterBenchmark(("torch/merge/" + c.name()).c_str(), [c](benchmark::State& state) {
    auto run = [&](auto layer) {
      for (auto _ : state) {
        layer.merge();
        layer.unmerge();
        benchmark::DoNotOptimize(layer.base().weight());
      }
    };
    if (c.adapter == AdapterKind::Oft)
      run(TorchOftLinear(oft_layer<DenseLinear>(c.features, Convention::Math), "default"));
    else if (c.base == BaseFormat::Hqq)
      run(TorchLoraLinear(lora_layer<HqqLinear>(c.features), "default"));
    else
      run(TorchLoraLinear(lora_layer<DenseLinear>(c.features), "default"));
    state.SetItemsProcessed(state.iterations());
  })->Unit(benchmark::kMillisecond);
}

// One block through PEFT's rotation code: an OFT layer with in_features = b has one block.
void register_cayley(int b) {
  for (bool neumann : {false, true}) {
    const std::string name = std::string("torch/") + (neumann ? "cayley_neumann" : "cayley_exact") + "/b" + std::to_string(b);
    benchmark::RegisterBenchmark(name.c_str(), [b, neumann](benchmark::State& state) {
      OftConfig config;
      config.oft_block_size = b;
      config.use_cayley_neumann = neumann;
      OftLayer<DenseLinear> layer(DenseLinear(Matrix::Identity(b, b), std::nullopt), Convention::Peft);
      layer.add_adapter("default", config, cayley_params(b).transpose());
      const TorchOftLinear torch_layer(layer, "default");
      for (auto _ : state) benchmark::DoNotOptimize(torch_layer.rotation_blocks());
      state.SetItemsProcessed(state.iterations());
    });
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* threads = std::getenv("QORACLE_TORCH_THREADS");
  at::set_num_threads(threads ? std::atoi(threads) : 1);
  for (const LayerCase& c : forward_cases()) register_forward(c);
  for (const MergeCase& c : merge_cases()) register_merge(c);
  for (int b : cayley_block_sizes()) register_cayley(b);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("torch_threads", std::to_string(at::get_num_threads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
