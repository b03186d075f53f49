#pragma once
// Activations on the device in the layer's dtype (float, __half or __nv_bfloat16 bit patterns),
// shared by everything that runs a whole layer on the GPU: the fused kernels
// (resident_fused_layer.cu) and the PEFT-order baseline (bench/peft_order_gpu).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "optimized/device/activation_io.hpp"
#include "optimized/device/device_buffer.hpp"
#include "optimized/device/forward_timing.hpp"
#include "optimized/device/l2_flush.hpp"
#include "optimized/layer/host_layer.hpp"

namespace qoracle::optimized {

// Calls f with a null pointer of the device type of the layer's activations.
template <class F>
void with_activation_type(Activations dtype, F f) {
  switch (dtype) {
    case Activations::Float32: return f(static_cast<float*>(nullptr));
    case Activations::Float16: return f(static_cast<__half*>(nullptr));
    case Activations::BFloat16: return f(static_cast<__nv_bfloat16*>(nullptr));
  }
}

inline size_t activation_bytes(Activations dtype) { return dtype == Activations::Float32 ? 4 : 2; }

// Throws naming x unless it holds tokens x in values (tokens >= 1).
inline void check_activations(const std::vector<float>& x, int tokens, int in) {
  if (tokens < 1 || x.size() != static_cast<size_t>(tokens) * in)
    throw Error("x: expected " + std::to_string(tokens) + " x " + std::to_string(in) + " values, got " +
                std::to_string(x.size()));
}

// x (float values of the dtype) uploaded in the dtype, launch(d_x, d_y) run, y downloaded as floats.
template <class Launch>
std::vector<float> run_on_device(const std::vector<float>& x, size_t y_count, Activations dtype, Launch launch) {
  if (dtype == Activations::Float32) {
    DeviceBuffer<float> d_x(x.size()), d_y(y_count);
    d_x.upload(x);
    launch(static_cast<const void*>(d_x.get()), static_cast<void*>(d_y.get()));
    return d_y.download();
  }
  DeviceBuffer<std::uint16_t> d_x(x.size()), d_y(y_count);  // half or bfloat16 bit patterns
  d_x.upload(activation_bits(x, dtype));
  launch(static_cast<const void*>(d_x.get()), static_cast<void*>(d_y.get()));
  return activation_values(d_y.download(), dtype);
}

// Per forward of launch(r, d_x, d_y, stream) (r: which of `replicas` copies of the weights the
// caller reads, round robin; 1: always the same) on resident activations (a fixed pattern),
// `iterations` times after a warm-up of each replica, as plain launches or as one captured CUDA
// graph per replica: back to back between two events, and each alone after an L2 flush between
// two events around it (optimized/device/forward_timing.hpp).
template <class Launch>
ForwardTiming time_launches(size_t x_count, size_t y_count, Activations dtype, int iterations, int replicas, bool graph,
                            cudaStream_t stream, Launch launch) {
  const size_t bytes = activation_bytes(dtype);
  DeviceBuffer<unsigned char> d_x(bytes * x_count), d_y(bytes * y_count);
  check_cuda(cudaMemset(d_x.get(), 0x3c, bytes * x_count), "cudaMemset");
  const auto x = static_cast<const void*>(d_x.get());
  const auto y = static_cast<void*>(d_y.get());
  for (int r = 0; r < replicas; ++r) launch(r, x, y, stream);  // warm-up: modules load, pools fill
  check_cuda(cudaStreamSynchronize(stream), "warm-up forward");
  std::vector<cudaGraphExec_t> execs;
  if (graph)
    for (int r = 0; r < replicas; ++r) {
      cudaGraph_t g = nullptr;
      cudaGraphExec_t exec = nullptr;
      check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
      launch(r, x, y, stream);
      check_cuda(cudaStreamEndCapture(stream, &g), "cudaStreamEndCapture");
      check_cuda(cudaGraphInstantiate(&exec, g, 0), "cudaGraphInstantiate");
      cudaGraphDestroy(g);
      check_cuda(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");  // the graph's own warm-up
      execs.push_back(exec);
    }
  double host = 0;
  auto one = [&](int i) {
    const auto t0 = std::chrono::steady_clock::now();
    if (graph)
      check_cuda(cudaGraphLaunch(execs[static_cast<size_t>(i % replicas)], stream), "cudaGraphLaunch");
    else
      launch(i % replicas, x, y, stream);
    host += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  auto elapsed = [](const CudaEvent& a, const CudaEvent& b) {
    check_cuda(cudaEventSynchronize(b.e), "cudaEventSynchronize");
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, a.e, b.e), "cudaEventElapsedTime");
    return static_cast<double>(ms) * 1e-3;
  };
  ForwardTiming t;
  {
    flush_l2(stream);
    const CudaEvent start, stop;
    check_cuda(cudaEventRecord(start.e, stream), "cudaEventRecord");
    for (int i = 0; i < iterations; ++i) one(i);
    check_cuda(cudaEventRecord(stop.e, stream), "cudaEventRecord");
    t.stream_seconds = elapsed(start, stop) / iterations;
    t.host_seconds = host / iterations;
  }
  for (int i = 0; i < iterations; ++i) {
    const CudaEvent start, stop;
    flush_l2(stream);
    check_cuda(cudaEventRecord(start.e, stream), "cudaEventRecord");
    one(i);
    check_cuda(cudaEventRecord(stop.e, stream), "cudaEventRecord");
    t.isolated_seconds += elapsed(start, stop) / iterations;
  }
  for (cudaGraphExec_t e : execs) cudaGraphExecDestroy(e);
  return t;
}

}  // namespace qoracle::optimized
