#pragma once
// The GEMM path's weight, written once per forward into a scratch (out, ld) row-major matrix in
// the activation dtype (float32 for float32 activations), for cuBLAS to multiply: each element as
// the library dequantizes it (hqq's rnd(rnd(Q - z) s), EETQ's rnd(q s), AQLM's twice-rounded
// codebook sum), times DoRA's factor where the layer has one (folded here, so the GEMM's output
// needs no per-output scaling). Written once for host and device.
#include <cstring>

#include "optimized/device/dtype_bits.hpp"
#include "optimized/forward/row_layouts.hpp"

namespace qoracle::optimized {

constexpr int kDequantThreads = 256;

// A row layout's run (row, i0): its kLaneInputs weights into scratch[row][i0 ...] (16-bit dtypes;
// 16-byte stores: ld and i0 keep them aligned).
template <class Layout, class Tag>
QORACLE_HD void dequant_run(const Layout& w, int row, int i0, const float* dot_scale, Element<Tag>* scratch, int ld) {
  constexpr int L = Layout::kLaneInputs;
  const typename Layout::Raw raw = w.load(row, i0);
  const float factor = w.row_scale(row) * (dot_scale ? dot_scale[row] : 1.0f);
  std::uint32_t pairs[L / 2];
  for (int c = 0; c < L; c += 2) {
    const float v0 = w.value(raw, row, i0, c), v1 = w.value(raw, row, i0, c + 1);
    pairs[c / 2] = factor == 1.0f ? pack_pair(v0, v1, Tag{}) : pack_pair(v0 * factor, v1 * factor, Tag{});
  }
  Element<Tag>* dst = scratch + static_cast<long long>(row) * ld + i0;
  for (int k = 0; k < L / 8; ++k) {
#ifdef __CUDA_ARCH__
    reinterpret_cast<uint4*>(dst)[k] = make_uint4(pairs[4 * k], pairs[4 * k + 1], pairs[4 * k + 2], pairs[4 * k + 3]);
#else
    std::memcpy(dst + 8 * k, pairs + 4 * k, 16);
#endif
  }
}

// A view's element (o, i).
template <class View, class Tag>
QORACLE_HD void dequant_element(const View& w, int o, int i, const float* dot_scale, Element<Tag>* scratch, int ld) {
  const float v = w(o, i);
  scratch[static_cast<long long>(o) * ld + i] = float_to_bits(dot_scale ? v * dot_scale[o] : v, Tag{});
}

}  // namespace qoracle::optimized
