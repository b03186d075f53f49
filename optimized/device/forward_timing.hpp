#pragma once
// What a forward costs, as the benchmarks report it for every path (the fused kernels, the
// PEFT-order baseline), by CUDA events:
//   stream_seconds: forwards back to back, as a model runs layer after layer, each reading weights
//     the previous forwards did not leave in L2 where the caller rotates replicas of them (the
//     fused layer does; the baseline's rows say warm);
//   isolated_seconds: each forward alone after the L2 was flushed (optimized/device/l2_flush.hpp),
//     the same method for every path: launch latency and ramp included;
//   host_seconds: the CPU time to enqueue one forward (its launches, or one graph launch).
namespace qoracle::optimized {

struct ForwardTiming {
  double stream_seconds = 0;
  double isolated_seconds = 0;
  double host_seconds = 0;
};

}  // namespace qoracle::optimized
