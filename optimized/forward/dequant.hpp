#pragma once
// The GEMM path's weight, written once per forward into a scratch (out, ld) row-major matrix in
// the activation dtype (float32 for float32 activations), for cuBLAS to multiply: each element as
// the library dequantizes it (hqq's rnd(rnd(Q - z) s), EETQ's rnd(q s), AQLM's twice-rounded
// codebook sum), times DoRA's factor where the layer has one (folded here, so the GEMM's output
// needs no per-output scaling). Written once for host and device.
#include "optimized/device/dtype_bits.hpp"
#include "optimized/forward/row_layouts.hpp"

namespace qoracle::optimized {

constexpr int kDequantThreads = 256;

// A row layout's run (row, i0): its kLaneInputs weights into scratch[row][i0 ...].
template <class Layout, class Tag>
QORACLE_HD void dequant_run(const Layout& w, int row, int i0, const float* dot_scale, Element<Tag>* scratch, int ld) {
  const typename Layout::Raw raw = w.load(row, i0);
  const float factor = w.row_scale(row) * (dot_scale ? dot_scale[row] : 1.0f);
  for (int c = 0; c < Layout::kLaneInputs; ++c) {
    const float v = w.value(raw, row, i0, c);
    scratch[static_cast<long long>(row) * ld + i0 + c] = float_to_bits(factor == 1.0f ? v : v * factor, Tag{});
  }
}

// A view's element (o, i).
template <class View, class Tag>
QORACLE_HD void dequant_element(const View& w, int o, int i, const float* dot_scale, Element<Tag>* scratch, int ld) {
  const float v = w(o, i);
  scratch[static_cast<long long>(o) * ld + i] = float_to_bits(dot_scale ? v * dot_scale[o] : v, Tag{});
}

}  // namespace qoracle::optimized
