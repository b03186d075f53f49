#pragma once
// Every launch a resident layer's forward makes, as plain data (optimized/device/launch_limits.hpp),
// computed on the host from the same planners and constants the launchers use, so CI checks them
// against the device limits without a GPU.
#include <vector>

#include "optimized/device/launch_limits.hpp"
#include "optimized/forward/rows_base.hpp"

namespace qoracle::optimized {

struct ForwardShape {
  RowsKind kind = RowsKind::None;  // None: the view path
  int out = 0, in = 0, tokens = 1;
  int rotation_unit = 1;  // OFT: the block sizes' least common multiple (1: no OFT)
  int rotations = 0;      // OFT adapters
  bool sixteen_bit = true;  // float16/bfloat16 activations
  int rank = 0;           // LoRA
};

std::vector<LaunchConfig> forward_launches(const ForwardShape& shape, int sms);

}  // namespace qoracle::optimized
