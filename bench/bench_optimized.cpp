// The optimized kernels (optimized/) on every GEMV case of bench/layer_cases (1 and 8 tokens),
// timed on the device with CUDA events, weights resident. Without a GPU every case reports
// "no GPU: ..." as a skipped benchmark. Bytes are the quantized weight bytes a forward reads, so
// bytes_per_second over the device's copy bandwidth is the ratio to the memory floor.
#include <benchmark/benchmark.h>

#include "bench/forward_counters.hpp"
#include "bench/layer_cases.hpp"
#include "optimized/device_probe.hpp"
#include "optimized/fused_layer.hpp"
#include "optimized/hqq_merge.hpp"

namespace {

using namespace qoracle;
using namespace qoracle::bench;

void register_forward(const LayerCase& c) {
  with_base(c.base, [&]<class Base>() {
    benchmark::RegisterBenchmark(("optimized/forward/" + c.name()).c_str(), [c](benchmark::State& state) {
      const auto device = optimized::probe_device();
      if (!device.available) {
        state.SkipWithError(("no GPU: " + device.reason).c_str());
        return;
      }
      const optimized::HostLayer host = c.adapter == AdapterKind::Oft
                                            ? optimized::host_layer(oft_layer<Base>(c.features), "default")
                                            : optimized::host_layer(lora_layer<Base>(c.features), "default");
      const optimized::ResidentFusedLayer layer(host);
      for (auto _ : state) state.SetIterationTime(layer.time_forward(c.tokens, 20));
      set_forward_counters<Base>(state, c);
      state.SetLabel(device.reason);
    })->UseManualTime()->Unit(benchmark::kMicrosecond);
  });
}

// PEFT's HqqLoraLinear merge on the GPU (dequantize, + s B A, requantize with the proximal
// optimizer), wall time including the uploads and downloads; compare with torch/merge/lora/hqq.
void register_hqq_merge(int features) {
  benchmark::RegisterBenchmark(("optimized/merge/lora/hqq/n" + std::to_string(features)).c_str(),
                               [features](benchmark::State& state) {
                                 const auto device = optimized::probe_device();
                                 if (!device.available) {
                                   state.SkipWithError(("no GPU: " + device.reason).c_str());
                                   return;
                                 }
                                 const optimized::HostLayer host =
                                     optimized::host_layer(lora_layer<HqqLinear>(features), "default");
                                 for (auto _ : state) benchmark::DoNotOptimize(optimized::hqq_merge(host));
                                 state.SetItemsProcessed(state.iterations());
                                 state.SetLabel(device.reason);
                               })
      ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  for (const LayerCase& c : forward_cases())
    if (c.tokens <= 8) register_forward(c);
  for (int n : {256, 1024, 4096}) register_hqq_merge(n);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
