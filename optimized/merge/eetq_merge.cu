// The GPU EETQ merge: the merged weight (merged_weight_on_device), then one block per output
// channel: amax of the float16-rounded weights by a max-reduction (order-free, so it equals the
// host's serial max), then every code written to its byte in the base's layout.
#include <cuda_runtime.h>

#include <limits>

#include "optimized/device/device_buffer.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/merge/eetq_merge.hpp"
#include "optimized/merge/eetq_requantize.hpp"
#include "optimized/merge/merged_weight_launch.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

namespace {

constexpr int kChannelThreads = 256;

// `unstorable`: the smallest flat index whose weight float16 cannot hold (left at its start
// value, the maximum, where every weight fits).
__global__ void requantize_kernel(const float* merged, EetqView layout, std::int8_t* bytes, float* scales,
                                  unsigned long long* unstorable) {
  __shared__ float partial[kChannelThreads];
  const int o = static_cast<int>(blockIdx.x), in = layout.in_features;
  const float* row = merged + static_cast<long long>(o) * in;
  float amax = 0.0f;
  for (int i = static_cast<int>(threadIdx.x); i < in; i += kChannelThreads) {
    const float stored = round_to_half(row[i]);
    if (!isfinite(stored)) atomicMin(unstorable, static_cast<unsigned long long>(o) * in + i);
    amax = fmaxf(amax, fabsf(stored));
  }
  partial[threadIdx.x] = amax;
  __syncthreads();
  for (int s = kChannelThreads / 2; s > 0; s /= 2) {
    if (static_cast<int>(threadIdx.x) < s) partial[threadIdx.x] = fmaxf(partial[threadIdx.x], partial[threadIdx.x + s]);
    __syncthreads();
  }
  const float scale32 = eetq_scale32(partial[0]);
  if (threadIdx.x == 0) scales[o] = round_to_half(scale32);
  for (int i = static_cast<int>(threadIdx.x); i < in; i += kChannelThreads)
    bytes[layout.offset(o, i)] = EetqView::stored_byte(eetq_code(round_to_half(row[i]), scale32), layout.layout);
}

}  // namespace

HostLayer eetq_merge(const HostLayer& l) {
  const EetqWeights& base = check_eetq_merge(l);
  const DeviceStatus device = probe_device();
  if (!device.available) throw Error("no GPU: " + device.reason);
  const std::size_t elements = static_cast<std::size_t>(l.out_features) * l.in_features;
  Uploads keep;
  const float* merged = merged_weight_on_device(l, keep);
  DeviceBuffer<std::int8_t> bytes(elements);
  DeviceBuffer<float> scales(static_cast<std::size_t>(l.out_features));
  DeviceBuffer<unsigned long long> unstorable(1);
  unstorable.upload({std::numeric_limits<unsigned long long>::max()});
  requantize_kernel<<<l.out_features, kChannelThreads>>>(merged, eetq_layout_of(l, base), bytes.get(), scales.get(),
                                                         unstorable.get());
  check_cuda(cudaGetLastError(), "eetq_merge launches");
  const unsigned long long bad = unstorable.download()[0];
  if (bad != std::numeric_limits<unsigned long long>::max())
    refuse_unstorable_weight(l, static_cast<long long>(bad), download(merged + bad, 1)[0]);
  return eetq_merged_layer(l, EetqWeights{bytes.download(), scales.download(), base.layout});
}

}  // namespace qoracle::optimized
