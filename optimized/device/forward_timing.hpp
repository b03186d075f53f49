#pragma once
// What a forward costs, as the benchmarks report it for every path (the fused kernels, the
// PEFT-order baseline): GPU time by CUDA events, and the CPU time to enqueue it.
namespace qoracle::optimized {

struct ForwardTiming {
  double device_seconds = 0;  // per forward
  double host_seconds = 0;    // per forward: the launches (or the graph launch) alone
};

}  // namespace qoracle::optimized
