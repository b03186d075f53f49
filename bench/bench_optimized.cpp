// The optimized kernels (optimized/) on every forward case of bench/layer_cases' device table (the
// GEMV up to 8 tokens, the tiled GEMM beyond), and the same cases through the PEFT-order baseline
// (bench/peft_order_gpu: PEFT's ops one launch each on cuBLAS), timed on the device with CUDA
// events, weights resident.
// Without a GPU every case reports "no GPU: ..." as a skipped benchmark. Bytes are the quantized
// weight bytes a forward reads; the counter x_memory_floor is the time over those bytes read at
// the device's measured copy bandwidth (1 = as fast as reading the weights can be).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "bench/forward_counters.hpp"
#include "bench/layer_cases.hpp"
#include "bench/peft_order_gpu/peft_order_layer.hpp"
#include "optimized/copy_bandwidth.hpp"
#include "optimized/dense_merge.hpp"
#include "optimized/device_probe.hpp"
#include "optimized/eetq_merge.hpp"
#include "optimized/fused_layer.hpp"
#include "optimized/hqq_merge.hpp"

namespace {

using namespace qoracle;
using namespace qoracle::bench;

const char* short_name(optimized::Activations dtype) {
  switch (dtype) {
    case optimized::Activations::Float16: return "f16";
    case optimized::Activations::BFloat16: return "bf16";
    case optimized::Activations::Float32: break;
  }
  return "f32";
}

double copy_bandwidth() {  // measured once per run
  static const double bandwidth = optimized::device_copy_bandwidth();
  return bandwidth;
}

// The case's layer as the kernels take it, activations in `dtype`. The last one is kept, since
// neither the token count nor the activation dtype changes the weights and building a 4096 x 11008
// layer (the float64 reference quantizes it) takes seconds: the cases of one layer run one after
// the other, so each layer is built once, not once per token count, dtype and path.
const optimized::HostLayer& host_layer_for(const LayerCase& c, optimized::Activations dtype) {
  static std::string key;
  static optimized::HostLayer host;
  const std::string name =
      std::string(adapter_kind_name(c.adapter)) + "/" + base_format_name(c.base) + "/" + c.shape.name();
  if (name != key) {
    host = with_base(c.base, [&]<class Base>() {
      return c.adapter == AdapterKind::Oft ? optimized::host_layer(oft_layer<Base>(c.shape), "default")
                                           : optimized::host_layer(lora_layer<Base>(c.shape), "default");
    });
    key = name;
  }
  host.activations = dtype;
  return host;
}

// One forward case on the GPU through `Layer` (built from the case's HostLayer, then timed by its
// time_forward): the fused kernels, or the PEFT-order baseline. Both report the same counters, so
// bench/gpu_report.py can put them side by side. Float32 cases keep the CPU table's names;
// others end in /f16 or /bf16.
template <class Layer>
void register_forward(const std::string& prefix, const LayerCase& c, optimized::Activations dtype) {
  const std::string suffix = dtype == optimized::Activations::Float32 ? "" : std::string("/") + short_name(dtype);
  with_base(c.base, [&]<class Base>() {
    benchmark::RegisterBenchmark((prefix + "/forward/" + c.name() + suffix).c_str(), [c, dtype](benchmark::State& state) {
      const auto device = optimized::probe_device();
      if (!device.available) {
        state.SkipWithError(("no GPU: " + device.reason).c_str());
        return;
      }
      const Layer layer(host_layer_for(c, dtype));
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

// Merges on the GPU, wall time including the uploads and downloads: into HQQ (dequantize, + s B A
// or rotate, requantize with the proximal optimizer), into a plain linear layer (the merged
// float32 weight) and into EETQ (requantized int8, float16 scales). Compare with the real PEFT's
// merges on the same device (peft_real/merge/..., bench/peft_gpu_timing.py) and torch/merge/... on
// the CPU. PEFT cannot merge OFT into HQQ (its HqqOFTLinear.merge raises) nor anything into EETQ,
// so those rows have no baseline; they are timed for their own cost.
template <class Layer, class Merge>
void register_merge(const std::string& name, int features, Layer (*make)(LayerShape), Merge merge) {
  // Built on the first run and kept: Google Benchmark runs the function several times to size the
  // iterations, and a 4096 x 4096 quantized layer takes seconds to build.
  auto built = std::make_shared<std::optional<optimized::HostLayer>>();
  benchmark::RegisterBenchmark(("optimized/merge/" + name + "/n" + std::to_string(features)).c_str(),
                               [features, make, merge, built](benchmark::State& state) {
                                 const auto device = optimized::probe_device();
                                 if (!device.available) {
                                   state.SkipWithError(("no GPU: " + device.reason).c_str());
                                   return;
                                 }
                                 if (!*built) *built = optimized::host_layer(make(LayerShape{features, features}), "default");
                                 for (auto _ : state) benchmark::DoNotOptimize(merge(**built));
                                 state.SetItemsProcessed(state.iterations());
                                 state.SetLabel(device.reason);
                               })
      ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  using optimized::Activations;
  for (const LayerCase& c : device_forward_cases()) {
    // float16, as PEFT users run these layers, at the sizes of a 7B model.
    const bool large = std::min(c.shape.in, c.shape.out) >= 4096;
    for (Activations dtype : {Activations::Float32, Activations::Float16}) {
      if (dtype != Activations::Float32 && !large) continue;
      register_forward<optimized::ResidentFusedLayer>("optimized", c, dtype);
      register_forward<PeftOrderGpuLayer>("peft_order_gpu", c, dtype);
    }
  }
  for (int n : {256, 1024, 4096}) {
    register_merge("lora/hqq", n, +[](LayerShape shape) { return lora_layer<HqqLinear>(shape); }, optimized::hqq_merge);
    register_merge("oft/hqq", n, +[](LayerShape shape) { return oft_layer<HqqLinear>(shape); }, optimized::hqq_merge);
    register_merge("lora/linear", n, +[](LayerShape shape) { return lora_layer<DenseLinear>(shape); },
                   optimized::dense_merge);
    register_merge("oft/linear", n, +[](LayerShape shape) { return oft_layer<DenseLinear>(shape); },
                   optimized::dense_merge);
    register_merge("lora/eetq", n, +[](LayerShape shape) { return lora_layer<EetqLinear>(shape); },
                   optimized::eetq_merge);
    register_merge("oft/eetq", n, +[](LayerShape shape) { return oft_layer<EetqLinear>(shape); },
                   optimized::eetq_merge);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
