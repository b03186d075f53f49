// The fused GEMM's host emulation: the kernel's tile steps run serially, one thread holding the
// whole tile's accumulators, tiles in the grid's order. Each output sums the same products in
// the same order as on the device.
#include <algorithm>
#include <vector>

#include "optimized/activation_io.hpp"
#include "optimized/fused_gemm.hpp"
#include "optimized/fused_gemv_checks.hpp"
#include "optimized/fused_views.hpp"

namespace qoracle::optimized {

std::vector<float> fused_gemm_on_host(const HostLayer& l, const std::vector<float>& x_in, int tokens) {
  check_fused_layer(l, x_in.size(), tokens);
  const std::vector<float> x = round_activations(x_in, l.activations);
  const std::vector<std::vector<float>> rotations = rotations_on_host(l);
  const FusedAdapters a = fused_adapters(l, data_of(rotations), [](const auto& v) { return v.data(); });
  const int in = l.in_features, out = l.out_features, bk = gemm_tile_k(rotation_unit(l));
  constexpr int kSlots = kGemmTileOut * kGemmTileTokens;
  std::vector<float> y(static_cast<std::size_t>(tokens) * out), xs(kGemmTileTokens * bk), x_rot(xs.size()),
      ws(static_cast<std::size_t>(kGemmTileOut) * bk), u(static_cast<std::size_t>(kGemmTileTokens) * l.rank), acc(kSlots);
  std::visit(
      [&](const auto& w) {
        const auto view = make_view(w, l, [](const auto& v) { return v.data(); });
        for (int t0 = 0; t0 < tokens; t0 += kGemmTileTokens)
          for (int o0 = 0; o0 < out; o0 += kGemmTileOut) {
            std::fill(u.begin(), u.end(), 0.0f);
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int k0 = 0; k0 < in; k0 += bk) {
              const float* tile =
                  gemm_load_activations(x.data(), tokens, in, t0, k0, bk, a, xs.data(), x_rot.data(), u.data(), 0, 1, NoSync{});
              gemm_load_weights(view, out, in, o0, k0, bk, ws.data(), 0, 1, NoSync{});
              gemm_accumulate<kSlots>(ws.data(), tile, bk, acc.data(), 0, 1, NoSync{});
            }
            gemm_epilogue<kSlots>(acc.data(), a, u.data(), out, tokens, o0, t0, y.data(), 0, 1);
          }
      },
      l.weights);
  return round_activations(y, l.activations);  // the kernel's one rounding, as it stores y
}

std::vector<float> fused_forward_on_host(const HostLayer& layer, const std::vector<float>& x, int tokens) {
  return tokens <= kGemvMaxTokens ? fused_gemv_on_host(layer, x, tokens) : fused_gemm_on_host(layer, x, tokens);
}

}  // namespace qoracle::optimized
