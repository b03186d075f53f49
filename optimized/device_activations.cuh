#pragma once
// Activations on the device in the layer's dtype (float, __half or __nv_bfloat16 bit patterns),
// shared by everything that runs a whole layer on the GPU: the fused kernels
// (resident_fused_layer.cu) and the PEFT-order baseline (bench/peft_order_gpu).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "optimized/activation_io.hpp"
#include "optimized/device_buffer.hpp"
#include "optimized/fused_weights.hpp"

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

// Seconds per launch(d_x, d_y) on resident zeroed activations, by CUDA events over `iterations`
// launches after one warm-up: device time only, no copies.
template <class Launch>
double time_on_device(size_t x_count, size_t y_count, Activations dtype, int iterations, Launch launch) {
  const size_t bytes = activation_bytes(dtype);
  DeviceBuffer<unsigned char> d_x(bytes * x_count), d_y(bytes * y_count);
  check_cuda(cudaMemset(d_x.get(), 0, bytes * x_count), "cudaMemset");
  launch(static_cast<const void*>(d_x.get()), static_cast<void*>(d_y.get()));  // warm-up
  const float ms = device_milliseconds([&] {
    for (int i = 0; i < iterations; ++i) launch(static_cast<const void*>(d_x.get()), static_cast<void*>(d_y.get()));
  });
  return ms * 1e-3 / iterations;
}

}  // namespace qoracle::optimized
