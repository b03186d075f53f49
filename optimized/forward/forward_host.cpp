// The resident layer's forward emulated on the host (optimized/layer/resident_layer.hpp): the same
// repacked tensors, the prepass's block code as one thread, the tensor-core GEMV's 32 lanes
// building their mma fragments and mma_on_host multiplying them, the K slices summed in slice
// order, the view path's lanes summed in its shuffle tree; the GEMM path with its dequantized
// weight, and cuBLAS's products summed exactly and rounded once where cuBLAS rounds its output.
#include <algorithm>
#include <vector>

#include "optimized/device/activation_io.hpp"
#include "optimized/forward/dequant.hpp"
#include "optimized/forward/prepass.hpp"
#include "optimized/forward/rows_base.hpp"
#include "optimized/forward/tc_gemv.hpp"
#include "optimized/forward/tc_rotation.hpp"
#include "optimized/forward/view_gemv.hpp"
#include "optimized/layer/fused_views.hpp"
#include "optimized/layer/layer_checks.hpp"

namespace qoracle::optimized {

namespace {

constexpr int kHostSms = 132;  // the H200's, so the emulated K split is the one the device makes there


template <class Tag>
std::vector<Element<Tag>> to_elements(const std::vector<float>& v) {
  std::vector<Element<Tag>> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = float_to_bits(v[i], Tag{});
  return out;
}

template <class Tag>
std::vector<float> to_floats_of(const std::vector<Element<Tag>>& v) {
  std::vector<float> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = bits_to_float(v[i], Tag{});
  return out;
}

auto host_at = [](const auto& v) { return v.data(); };

// The adapters' prepass: x_rot (OFT) and u (LoRA, tokens <= kPrepassTokens).
template <class Tag>
void prepass_on_host(const HostLayer& l, const FusedAdapters& a, const Element<Tag>* x, int tokens, bool lora,
                     Element<Tag>* x_rot, float* u) {
  const int unit = rotation_unit(l), in = l.in_features;
  std::vector<float> smem(static_cast<std::size_t>(prepass_shared_floats(unit)));
  if (!l.oft.empty())
    for (int chunk = 0; chunk < in / unit; ++chunk)
      prepass_rotate_chunk<Tag, Tag>(x, 0, tokens, in, unit, chunk, a, x_rot, smem.data(), 0, 1, NoSync{});
  if (lora)
    for (int r = 0; r < a.rank; ++r) prepass_lora_row<Tag>(x, tokens, in, a, r, u, smem.data(), 0, 1, NoSync{});
}

// The GEMM path's tensor-core rotation: each block's warps emulated lane by lane.
template <class Tag>
void tc_rotation_on_host(const Element<Tag>* x, int tokens, int in, const RotationBlocks& rot, Element<Tag>* x_rot) {
  const int b = rot.block_size, xsd = rotation_x_stride(b), rsd = rotation_r_stride(b);
  std::vector<float> smem(static_cast<std::size_t>(tc_rotation_shared_bytes(b)) / sizeof(float));
  for (int j = 0; j < in / b; ++j)
    for (int t0 = 0; t0 < tokens; t0 += kRotationTokens) {
      tc_rotation_fill<Tag>(x, tokens, in, rot, j, t0, smem.data(), 0, 1);
      const float* r_hi = smem.data() + kRotationTokens * xsd;
      const float* r_lo = r_hi + b * rsd;
      for (int warp = 0; warp < kRotationWarps; ++warp) {
        const float* xs = smem.data() + 16 * warp * xsd;
        for (int n0 = 0; n0 < b; n0 += 8) {
          float c[32][4] = {};
          for (int k0 = 0; k0 < b; k0 += 8) {
            Tf32A a[32];
            Tf32B hi[32], lo[32];
            for (int lane = 0; lane < 32; ++lane) {
              a[lane] = rotation_fragment_a(xs, xsd, lane, k0);
              hi[lane] = rotation_fragment_b(r_hi, rsd, lane, k0, n0);
              lo[lane] = rotation_fragment_b(r_lo, rsd, lane, k0, n0);
            }
            mma_tf32_on_host(a, hi, c);
            mma_tf32_on_host(a, lo, c);
          }
          for (int lane = 0; lane < 32; ++lane) tc_rotation_store<Tag>(c[lane], tokens, in, b, j, t0, warp, lane, n0, x_rot);
        }
      }
    }
}

template <class Tag, class Layout>
void tc_gemv_on_host(const Layout& w, int rows_pad, int out, const std::uint16_t* x, int tokens, int in,
                     const FusedAdapters& a, const float* u, std::uint16_t* y) {
  constexpr int L = Layout::kLaneInputs;
  const GemvPlan p = plan_gemv(rows_pad, w.in_pad, 4 * L, tokens, kHostSms, shared_codebook_bytes(w));
  const int stride = xs_stride(p.k_slice), tt_count = p.token_tiles;
  std::vector<float> part(static_cast<std::size_t>(p.splits) * tokens * rows_pad);
  std::vector<std::uint16_t> xs(static_cast<std::size_t>(8 * tt_count) * stride);
  for (int split = 0; split < p.splits; ++split) {
    const int k_begin = split * p.k_slice, k_end = std::min(k_begin + p.k_slice, w.in_pad);
    fill_activation_slice(x, tokens, in, k_begin, k_end - k_begin, stride, xs.data(), 0, 1);
    for (int r0 = 0; r0 < rows_pad; r0 += kTileRows) {
      MmaC c[2][32];
      for (int kb = k_begin; kb < k_end; kb += 4 * L) {
        typename Layout::Raw raw_a[32], raw_b[32];
        for (int lane = 0; lane < 32; ++lane) {
          const int g = lane >> 2, q = lane & 3;
          raw_a[lane] = w.load(r0 + g, kb + L * q);
          raw_b[lane] = w.load(r0 + g + 8, kb + L * q);
        }
        for (int j = 0; j < L / 4; ++j) {
          MmaA A[32];
          MmaB B[2][32];
          for (int lane = 0; lane < 32; ++lane) {
            const int g = lane >> 2, q = lane & 3, i0 = kb + L * q;
            A[lane] = fragment_a(w, raw_a[lane], raw_b[lane], r0 + g, r0 + g + 8, i0, j, Tag{});
            for (int tt = 0; tt < tt_count; ++tt)
              B[tt][lane] = fragment_b(xs.data() + (tt * 8 + g) * stride, i0 - k_begin, j, tt * 8 + g < tokens);
          }
          for (int tt = 0; tt < tt_count; ++tt) mma_on_host(A, B[tt], c[tt], Tag{});
        }
      }
      for (int tt = 0; tt < tt_count; ++tt)
        for (int lane = 0; lane < 32; ++lane)
          for (int i = 0; i < 4; ++i) {
            const int row = r0 + accumulator_row(lane, i), t = tt * 8 + accumulator_token(lane, i);
            if (t < tokens) part[(static_cast<std::size_t>(split) * tokens + t) * rows_pad + row] = c[tt][lane].c[i];
          }
    }
  }
  for (int t = 0; t < tokens; ++t)
    for (int row = 0; row < out; ++row) {
      float sum = part[static_cast<std::size_t>(t) * rows_pad + row];
      for (int s = 1; s < p.splits; ++s) sum += part[(static_cast<std::size_t>(s) * tokens + t) * rows_pad + row];
      y[static_cast<std::size_t>(t) * out + row] =
          float_to_bits(fused_epilogue(sum * w.row_scale(row), row, a, u + t * a.rank), Tag{});
    }
}

template <class Tag, class View>
void view_gemv_on_host(const View& w, const Element<Tag>* x, int tokens, int in, int out, const FusedAdapters& a,
                       const float* u, Element<Tag>* y) {
  for (int o = 0; o < out; ++o) {
    float lane[32][kGemvMaxTokens];
    for (int k = 0; k < 32; ++k) view_gemv_lane<View, Tag>(w, o, x, tokens, in, k, lane[k]);
    for (int offset = 16; offset > 0; offset /= 2)  // the kernel's __shfl_down tree
      for (int k = 0; k < offset; ++k)
        for (int t = 0; t < kGemvMaxTokens; ++t) lane[k][t] += lane[k + offset][t];
    for (int t = 0; t < tokens; ++t)
      y[static_cast<std::size_t>(t) * out + o] = float_to_bits(fused_epilogue(lane[0][t], o, a, u + t * a.rank), Tag{});
  }
}

// At most kGemvMaxTokens tokens.
template <class Tag>
void gemv_group_on_host(const HostLayer& l, const RowsBase& rows, const FusedAdapters& a, const Element<Tag>* x,
                        int tokens, Element<Tag>* y) {
  const int in = l.in_features, out = l.out_features;
  std::vector<Element<Tag>> x_rot(l.oft.empty() ? 0 : static_cast<std::size_t>(tokens) * in);
  std::vector<float> u(static_cast<std::size_t>(tokens) * std::max(a.rank, 1));
  prepass_on_host<Tag>(l, a, x, tokens, a.rank > 0, x_rot.data(), u.data());
  const Element<Tag>* xin = l.oft.empty() ? x : x_rot.data();
  if constexpr (!std::is_same_v<Tag, FloatTag>) {
    if (rows.kind != RowsKind::None) {
      with_rows_layout<Tag>(rows, host_at, [&](const auto& w) {
        tc_gemv_on_host<Tag>(w, rows.rows_pad, out, xin, tokens, in, a, u.data(), y);
      });
      return;
    }
  }
  std::visit([&](const auto& weights) {
    view_gemv_on_host<Tag>(make_view(weights, l, host_at), xin, tokens, in, out, a, u.data(), y);
  }, l.weights);
}

template <class Tag>
std::vector<float> gemv_on_host(const HostLayer& l, const std::vector<float>& x_in, int tokens) {
  const std::vector<std::vector<float>> rotations = rotations_on_host(l);
  const FusedAdapters a = fused_adapters(l, data_of(rotations), host_at);
  const RowsBase rows = repack_rows(l);
  const std::vector<Element<Tag>> x = to_elements<Tag>(x_in);
  std::vector<Element<Tag>> y(static_cast<std::size_t>(tokens) * l.out_features);
  for (int t0 = 0; t0 < tokens; t0 += kGemvMaxTokens)
    gemv_group_on_host<Tag>(l, rows, a, x.data() + static_cast<std::size_t>(t0) * l.in_features,
                            std::min(kGemvMaxTokens, tokens - t0), y.data() + static_cast<std::size_t>(t0) * l.out_features);
  return to_floats_of<Tag>(y);
}

// sum_k a[i][k] b[j][k] for row-major a (m, k, lda) and b (n, k, ldb), exactly (in double), as
// cuBLAS's float32 accumulation approximates it; + c; rounded once to the dtype.
template <class Tag>
void gemm_nt_on_host(int m, int n, int k, const Element<Tag>* a, int lda, const Element<Tag>* b, int ldb,
                     Element<Tag>* c, int ldc, bool accumulate) {
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = accumulate ? bits_to_float(c[static_cast<std::size_t>(i) * ldc + j], Tag{}) : 0.0;
      for (int p = 0; p < k; ++p)
        s += static_cast<double>(bits_to_float(a[static_cast<std::size_t>(i) * lda + p], Tag{})) *
             bits_to_float(b[static_cast<std::size_t>(j) * ldb + p], Tag{});
      c[static_cast<std::size_t>(i) * ldc + j] = float_to_bits(static_cast<float>(s), Tag{});
    }
}

template <class Tag>
std::vector<float> gemm_on_host(const HostLayer& l, const std::vector<float>& x_in, int tokens) {
  const int in = l.in_features, out = l.out_features, rank = l.rank;
  const std::vector<std::vector<float>> rotations = rotations_on_host(l);
  const FusedAdapters a = fused_adapters(l, data_of(rotations), host_at);
  const RowsBase rows = repack_rows(l);
  const std::vector<Element<Tag>> x = to_elements<Tag>(x_in);
  std::vector<Element<Tag>> x_rot(l.oft.empty() ? 0 : x.size());
  if constexpr (!std::is_same_v<Tag, FloatTag>) {
    if (tc_rotation_fits(a.rotations, rotation_unit(l)))
      tc_rotation_on_host<Tag>(x.data(), tokens, in, a.rotation[0], x_rot.data());
    else
      prepass_on_host<Tag>(l, a, x.data(), tokens, false, x_rot.data(), nullptr);
  } else {
    prepass_on_host<Tag>(l, a, x.data(), tokens, false, x_rot.data(), nullptr);
  }
  const Element<Tag>* xin = l.oft.empty() ? x.data() : x_rot.data();
  // The weight cuBLAS multiplies: the dense base as resident, else dequantized (DoRA folded in).
  const bool dora = !l.dot_scale.empty();
  const int ld = rows.kind != RowsKind::None ? rows.in_pad : in;
  std::vector<Element<Tag>> w(static_cast<std::size_t>(out) * ld);
  const float* g = dora ? l.dot_scale.data() : nullptr;
  if constexpr (!std::is_same_v<Tag, FloatTag>) {
    if (rows.kind != RowsKind::None) {
      with_rows_layout<Tag>(rows, host_at, [&](const auto& layout) {
        using Layout = std::decay_t<decltype(layout)>;
        if (rows.kind == RowsKind::Dense && !dora) {
          std::copy(rows.dense.begin(), rows.dense.begin() + static_cast<std::ptrdiff_t>(w.size()), w.begin());
          return;
        }
        for (int o = 0; o < out; ++o)
          for (int i0 = 0; i0 < rows.in_pad; i0 += Layout::kLaneInputs) dequant_run<Layout, Tag>(layout, o, i0, g, w.data(), ld);
      });
    }
  }
  if (rows.kind == RowsKind::None)
    std::visit([&](const auto& weights) {
      const auto view = make_view(weights, l, host_at);
      for (int o = 0; o < out; ++o)
        for (int i = 0; i < in; ++i) dequant_element<std::decay_t<decltype(view)>, Tag>(view, o, i, g, w.data(), ld);
    }, l.weights);
  std::vector<Element<Tag>> y(static_cast<std::size_t>(tokens) * out);
  gemm_nt_on_host<Tag>(tokens, out, in, xin, in, w.data(), ld, y.data(), out, false);
  const bool bias = !l.bias.empty() || !l.lora_bias.empty();
  if (rank > 0 || bias) {  // y += [u 1] [s B | bias + s b_B]^T, u = x A^T in the dtype
    const int r_aug = (rank + 1 + 7) / 8 * 8;
    std::vector<float> b(static_cast<std::size_t>(out) * r_aug, 0.0f), ua(static_cast<std::size_t>(tokens) * r_aug, 0.0f);
    for (int o = 0; o < out; ++o) {
      for (int r = 0; r < rank; ++r) b[static_cast<std::size_t>(o) * r_aug + r] = l.scaling * l.lora_b[static_cast<std::size_t>(o) * rank + r];
      b[static_cast<std::size_t>(o) * r_aug + rank] = (l.bias.empty() ? 0.0f : l.bias[static_cast<std::size_t>(o)]) +
                                                      (l.lora_bias.empty() ? 0.0f : l.scaling * l.lora_bias[static_cast<std::size_t>(o)]);
    }
    for (int t = 0; t < tokens; ++t) ua[static_cast<std::size_t>(t) * r_aug + rank] = 1.0f;
    std::vector<Element<Tag>> b_el = to_elements<Tag>(b), u_el = to_elements<Tag>(ua);
    if (rank > 0) {
      const std::vector<Element<Tag>> a_el = to_elements<Tag>(l.lora_a);
      gemm_nt_on_host<Tag>(tokens, rank, in, x.data(), in, a_el.data(), in, u_el.data(), r_aug, false);
    }
    gemm_nt_on_host<Tag>(tokens, out, r_aug, u_el.data(), r_aug, b_el.data(), r_aug, y.data(), out, true);
  }
  return to_floats_of<Tag>(y);
}

}  // namespace

std::vector<float> fused_gemv_on_host(const HostLayer& l, const std::vector<float>& x, int tokens) {
  check_fused_layer(l, x.size(), tokens);
  std::vector<float> y;
  with_activation_tag(l.activations, [&](auto tag) { y = gemv_on_host<decltype(tag)>(l, x, tokens); });
  return y;
}

std::vector<float> fused_gemm_on_host(const HostLayer& l, const std::vector<float>& x, int tokens) {
  check_fused_layer(l, x.size(), tokens);
  std::vector<float> y;
  with_activation_tag(l.activations, [&](auto tag) { y = gemm_on_host<decltype(tag)>(l, x, tokens); });
  return y;
}

std::vector<float> fused_forward_on_host(const HostLayer& l, const std::vector<float>& x, int tokens) {
  return tokens <= kGemvMaxTokens ? fused_gemv_on_host(l, x, tokens) : fused_gemm_on_host(l, x, tokens);
}

}  // namespace qoracle::optimized
