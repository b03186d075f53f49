// The resident fused layer (optimized/layer/resident_layer: the GEMV up to 16 tokens, the GEMM
// path beyond) on every base with no adapter, LoRA and OFT, 1 to 4096 tokens, plain and (few
// tokens) replayed as a CUDA graph, beside the PEFT-order baseline (bench/peft_order_gpu: PEFT's
// ops one launch each on cuBLAS); timed on the device with CUDA events around each forward, the L2
// flushed before it. The none/linear rows past 16 tokens are one cuBLAS GEMM: the plain cuBLAS
// reference of the GEMM goals. Without a GPU every row reports "no GPU: ..." as skipped.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "bench/forward_counters.hpp"
#include "bench/layer_cases.hpp"
#include "bench/peft_order_gpu/peft_order_layer.hpp"
#include "optimized/device/copy_bandwidth.hpp"
#include "optimized/merge/dense_merge.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/merge/eetq_merge.hpp"
#include "optimized/forward/tc_gemv.hpp"
#include "optimized/layer/fused_layer.hpp"
#include "optimized/layer/resident_layer.hpp"
#include "optimized/merge/device_merge.hpp"
#include "reference/error.hpp"
#include "optimized/merge/hqq_merge.hpp"

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

constexpr int kTimedForwards = 20;  // per row: each timed with a cold L2, their mean reported

// The weight bytes any forward of the format must read, as the format stores them: dense weights
// in the activation dtype (2 bytes in float16), quantized formats by bench/layer_cases.
template <class Base>
double floor_bytes(const Base& base, optimized::Activations dtype) {
  if constexpr (std::is_same_v<Base, DenseLinear>)
    return (dtype == optimized::Activations::Float32 ? 4.0 : 2.0) * base.in_features() * base.out_features();
  return weight_bytes(base);
}

enum class Adapter { None, Lora, Oft };
const char* adapter_name(Adapter a) { return a == Adapter::None ? "none" : a == Adapter::Lora ? "lora" : "oft"; }

struct DeviceRow {
  Adapter adapter;
  BaseFormat base;
  LayerShape shape;
  int tokens;
  optimized::Activations dtype;
  std::string name() const {
    return std::string(adapter_name(adapter)) + "/" + base_format_name(base) + "/" + shape.name() + "/t" +
           std::to_string(tokens) + "/" + short_name(dtype);
  }
};

// The row's layer as the kernels take it. Kept between rows (they come layer by layer): the
// float64 reference builds a 4096 x 11008 quantized base in seconds.
const optimized::HostLayer& host_layer_for(const DeviceRow& r) {
  static std::string key;
  static optimized::HostLayer host;
  const std::string name = std::string(adapter_name(r.adapter)) + "/" + base_format_name(r.base) + "/" + r.shape.name() +
                           "/" + short_name(r.dtype);
  if (name != key) {
    host = with_base(r.base, [&]<class Base>() {
      switch (r.adapter) {
        case Adapter::Oft: return optimized::host_layer(oft_layer<Base>(r.shape), "default");
        case Adapter::Lora: return optimized::host_layer(lora_layer<Base>(r.shape), "default");
        case Adapter::None: break;
      }
      return optimized::host_base(base_layer<Base>(r.shape));
    });
    host.activations = r.dtype;
    key = name;
  }
  return host;
}

// The resident layer (or baseline) of the row, kept while rows share it.
template <class Layer>
Layer& resident_for(const DeviceRow& r) {
  static std::string key;
  static std::unique_ptr<Layer> layer;
  const optimized::HostLayer& host = host_layer_for(r);
  const std::string name = r.name().substr(0, r.name().rfind("/t"));
  if (name != key || !layer) {
    layer.reset();
    layer = std::make_unique<Layer>(host);
    key = name;
  }
  return *layer;
}

// One forward row on the GPU: the fused layer (plain launches or replayed CUDA graphs) or the
// PEFT-order baseline (optimized/device/forward_timing.hpp). The row's time is the stream time
// (the fused layer's over copies of its weights, so from memory); counters: isolated_us (alone
// after an L2 flush, the same method for both), x_memory_floor (stream time over the format's
// bytes read at the measured copy bandwidth), host_us (CPU time to enqueue one forward); the
// label names the kernels.
void register_forward(const std::string& prefix, const DeviceRow& r) {
  benchmark::RegisterBenchmark((prefix + "/forward/" + r.name()).c_str(), [prefix, r](benchmark::State& state) {
    const auto device = optimized::probe_device();
    if (!device.available) {
      state.SkipWithError(("no GPU: " + device.reason).c_str());
      return;
    }
    try {
      optimized::ForwardTiming t;
      std::string label;
      if (prefix == "peft_order_gpu") {
        t = resident_for<PeftOrderGpuLayer>(r).time_forward(r.tokens, kTimedForwards);
        label = "peft order (stream: warm)";
      } else {
        auto& layer = resident_for<optimized::ResidentFusedLayer>(r);
        t = layer.time_forward(r.tokens, kTimedForwards, prefix == "optimized_graph", true);
        label = layer.path(r.tokens);
      }
      for (auto _ : state) state.SetIterationTime(t.stream_seconds);
      const double floor = with_base(r.base, [&]<class Base>() { return floor_bytes(base_layer<Base>(r.shape), r.dtype); }) /
                           copy_bandwidth();
      state.counters["x_memory_floor"] = t.stream_seconds / floor;
      state.counters["floor_us"] = floor * 1e6;
      state.counters["isolated_us"] = t.isolated_seconds * 1e6;
      state.counters["host_us"] = t.host_seconds * 1e6;
      state.counters["tokens"] = r.tokens;
      state.SetLabel(label);
    } catch (const Error& e) {
      state.SkipWithError(e.what());
    }
  })->Iterations(1)->UseManualTime()->Unit(benchmark::kMicrosecond);
}

// Merges on the GPU: wall time of one merge of a resident layer's adapters into its base, the
// result left on the device (merge_on_device, then waiting for it), as PEFT's merge() runs on a
// GPU-resident layer: into HQQ (dequantize, + s B A or rotate, requantize with the proximal
// optimizer), into a plain linear layer (the merged float32 weight) and into EETQ (requantized
// int8, float16 scales). Compare with the real PEFT's merges on the same device
// (peft_real/merge/..., bench/peft_gpu_timing.py). PEFT cannot merge OFT into HQQ (its
// HqqOFTLinear.merge raises) nor anything into EETQ, so those rows have no baseline.
template <class Layer>
void register_merge(const std::string& name, int features, Layer (*make)(LayerShape)) {
  // Built on the first run and kept: Google Benchmark runs the function several times to size the
  // iterations, and a 4096 x 4096 quantized layer takes seconds to build.
  auto built = std::make_shared<std::unique_ptr<optimized::ResidentFusedLayer>>();
  benchmark::RegisterBenchmark(("optimized/merge/" + name + "/n" + std::to_string(features)).c_str(),
                               [features, make, built](benchmark::State& state) {
                                 const auto device = optimized::probe_device();
                                 if (!device.available) {
                                   state.SkipWithError(("no GPU: " + device.reason).c_str());
                                   return;
                                 }
                                 try {
                                   if (!*built) {
                                     optimized::HostLayer host = optimized::host_layer(make(LayerShape{features, features}), "default");
                                     host.activations = optimized::Activations::Float16;
                                     *built = std::make_unique<optimized::ResidentFusedLayer>(host);
                                     optimized::merge_on_device(**built).wait();  // first use: modules load
                                   }
                                   for (auto _ : state) {
                                     const auto t0 = std::chrono::steady_clock::now();
                                     const optimized::DeviceMerge merged = optimized::merge_on_device(**built);
                                     merged.wait();
                                     state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
                                   }
                                   state.SetLabel(device.reason);
                                 } catch (const Error& e) {
                                   state.SkipWithError(e.what());
                                 }
                               })
      ->UseManualTime()
      ->MinTime(0.2)
      ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  using optimized::Activations;
  // float16 as PEFT users run these layers, at the sizes of a 7B model: every base with no
  // adapter, LoRA r16 and OFT b32, from one token to prefill; bfloat16 on the square shape.
  for (LayerShape shape : {LayerShape(4096), LayerShape(11008, 4096), LayerShape(4096, 11008)})
    for (BaseFormat base : {BaseFormat::Linear, BaseFormat::Hqq, BaseFormat::Aqlm, BaseFormat::Eetq})
      for (Adapter adapter : {Adapter::None, Adapter::Lora, Adapter::Oft})
        for (Activations dtype : {Activations::Float16, Activations::BFloat16}) {
          if (dtype == Activations::BFloat16 && shape != LayerShape(4096)) continue;
          for (int tokens : {1, 8, 16, 128, 512, 2048, 4096}) {
            const DeviceRow row{adapter, base, shape, tokens, dtype};
            register_forward("optimized", row);
            if (tokens <= optimized::kGemvMaxTokens) register_forward("optimized_graph", row);
            register_forward("peft_order_gpu", row);
          }
        }
  for (int n : {256, 1024, 4096}) {
    register_merge("lora/hqq", n, +[](LayerShape shape) { return lora_layer<HqqLinear>(shape); });
    register_merge("oft/hqq", n, +[](LayerShape shape) { return oft_layer<HqqLinear>(shape); });
    register_merge("lora/linear", n, +[](LayerShape shape) { return lora_layer<DenseLinear>(shape); });
    register_merge("oft/linear", n, +[](LayerShape shape) { return oft_layer<DenseLinear>(shape); });
    register_merge("lora/eetq", n, +[](LayerShape shape) { return lora_layer<EetqLinear>(shape); });
    register_merge("oft/eetq", n, +[](LayerShape shape) { return oft_layer<EetqLinear>(shape); });
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
