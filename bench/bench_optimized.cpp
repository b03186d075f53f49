// The optimized kernels (optimized/) on every forward case of bench/layer_cases (the GEMV at 1
// and 8 tokens, the tiled GEMM at 128), timed on the device with CUDA events, weights resident.
// Without a GPU every case reports "no GPU: ..." as a skipped benchmark. Bytes are the quantized
// weight bytes a forward reads; the counter x_memory_floor is the time over those bytes read at
// the device's measured copy bandwidth (1 = as fast as reading the weights can be).
#include <benchmark/benchmark.h>

#include "bench/forward_counters.hpp"
#include "bench/layer_cases.hpp"
#include "optimized/copy_bandwidth.hpp"
#include "optimized/device_probe.hpp"
#include "optimized/fused_layer.hpp"
#include "optimized/hqq_merge.hpp"

namespace {

using namespace qoracle;
using namespace qoracle::bench;

double copy_bandwidth() {  // measured once per run
  static const double bandwidth = optimized::device_copy_bandwidth();
  return bandwidth;
}

void register_forward(const LayerCase& c) {
  with_base(c.base, [&]<class Base>() {
    benchmark::RegisterBenchmark(("optimized/forward/" + c.name()).c_str(), [c](benchmark::State& state) {
      const auto device = optimized::probe_device();
      if (!device.available) {
        state.SkipWithError(("no GPU: " + device.reason).c_str());
        return;
      }
      const optimized::HostLayer host = c.adapter == AdapterKind::Oft
                                            ? optimized::host_layer(oft_layer<Base>(c.shape), "default")
                                            : optimized::host_layer(lora_layer<Base>(c.shape), "default");
      const optimized::ResidentFusedLayer layer(host);
      double seconds = 0;
      for (auto _ : state) {
        const double t = layer.time_forward(c.tokens, 20);
        state.SetIterationTime(t);
        seconds += t;
      }
      set_forward_counters<Base>(state, c);
      const double floor = weight_bytes(base_layer<Base>(c.shape)) / copy_bandwidth();
      state.counters["x_memory_floor"] = seconds / static_cast<double>(state.iterations()) / floor;
      state.counters["copy_GBps"] = copy_bandwidth() * 1e-9;
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
  for (const LayerCase& c : device_forward_cases()) register_forward(c);
  for (int n : {256, 1024, 4096}) register_hqq_merge(n);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
