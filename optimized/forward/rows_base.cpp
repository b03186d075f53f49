// Repacking a base into its row layout (once, when a layer becomes resident).
#include "optimized/forward/rows_base.hpp"

#include <cstring>

#include "optimized/device/dtype_bits.hpp"
#include "optimized/layer/fused_views.hpp"

namespace qoracle::optimized {

namespace {

template <class Tag>
std::uint16_t bits(float v) {
  return float_to_bits(v, Tag{});
}

template <class Tag>
void repack(const DenseWeights& w, RowsBase& r) {
  r.kind = RowsKind::Dense;
  r.in_pad = rows_geometry(RowsKind::Dense, r.out, r.in).in_pad;
  r.dense.assign(static_cast<std::size_t>(r.rows_pad) * r.in_pad, 0);
  for (int o = 0; o < r.out; ++o)
    for (int i = 0; i < r.in; ++i)
      r.dense[static_cast<std::size_t>(o) * r.in_pad + i] = bits<Tag>(w.w[static_cast<std::size_t>(o) * r.in + i]);
}

template <class Tag>
void repack(const EetqWeights& w, const HostLayer& l, RowsBase& r) {
  const EetqView view = make_view(w, l, [](const auto& v) { return v.data(); });
  r.kind = RowsKind::Int8;
  r.in_pad = rows_geometry(RowsKind::Int8, r.out, r.in).in_pad;
  r.q.assign(static_cast<std::size_t>(r.rows_pad) * r.in_pad, 0);
  r.row_scale.assign(static_cast<std::size_t>(r.rows_pad), 0.0f);
  for (int o = 0; o < r.out; ++o) {
    r.row_scale[static_cast<std::size_t>(o)] = w.scales[static_cast<std::size_t>(o)];
    for (int i = 0; i < r.in; ++i) r.q[static_cast<std::size_t>(o) * r.in_pad + i] = static_cast<std::int8_t>(view.code(o, i));
  }
}

// Axis 1 only, and every run of 16 inputs (from a multiple of 16) inside one group.
bool hqq_runs_fit(const HqqWeights& w, int out, int in) {
  if (w.axis != 1 || w.cols < 1) return false;
  for (long long o = 0; o < out; ++o)
    for (int i0 = 0; i0 < in; i0 += 16) {
      const long long first = o * in + i0, last = o * in + (i0 + 16 < in ? i0 + 16 : in) - 1;
      if (first / w.cols != last / w.cols) return false;
    }
  return true;
}

template <class Tag>
void repack(const HqqWeights& w, const HostLayer& l, RowsBase& r) {
  const int container = w.nbits == 3 ? 4 : w.nbits;  // 3-bit codes go into nibbles
  r.kind = container == 8 ? RowsKind::Hqq8 : container == 4 ? RowsKind::Hqq4 : container == 2 ? RowsKind::Hqq2 : RowsKind::Hqq1;
  const int per_byte = 8 / container;
  r.in_pad = rows_geometry(r.kind, r.out, r.in).in_pad;
  r.nbits = w.nbits;
  r.group_size = w.cols;
  r.groups = static_cast<long long>(w.scale.size());
  const HqqView view = make_view(w, l, [](const auto& v) { return v.data(); });
  r.codes8.assign(static_cast<std::size_t>(r.rows_pad) * r.in_pad / per_byte, 0);
  for (int o = 0; o < r.out; ++o)
    for (int i = 0; i < r.in; ++i) {
      const std::size_t at = (static_cast<std::size_t>(o) * r.in_pad + i) / per_byte;
      r.codes8[at] = static_cast<std::uint8_t>(r.codes8[at] | (view.code(o, i) << (container * (i % per_byte))));
    }
  for (float v : w.scale) r.scale_bits.push_back(bits<Tag>(v));
  for (float v : w.zero) r.zero_bits.push_back(bits<Tag>(v));
}

template <class Tag>
void repack(const AqlmWeights& w, RowsBase& r) {
  const bool wide = w.nbits > 8;
  r.kind = w.num_codebooks == 1 ? (wide ? RowsKind::Aqlm1x16 : RowsKind::Aqlm1x8) : (wide ? RowsKind::Aqlm2x16 : RowsKind::Aqlm2x8);
  r.in_pad = rows_geometry(r.kind, r.out, r.in).in_pad;
  r.nbits = w.nbits;
  const int c = w.num_codebooks, groups_pad = r.in_pad / 8;
  const std::size_t n = static_cast<std::size_t>(r.rows_pad) * groups_pad * c;
  if (wide) r.codes16.assign(n, 0); else r.codes8.assign(n, 0);
  for (int o = 0; o < r.out; ++o)
    for (int g = 0; g < w.in_groups; ++g)
      for (int k = 0; k < c; ++k) {
        const std::size_t from = (static_cast<std::size_t>(o) * w.in_groups + g) * c + k;
        const std::size_t to = (static_cast<std::size_t>(o) * groups_pad + g) * c + k;
        if (wide) r.codes16[to] = w.codes16[from]; else r.codes8[to] = static_cast<std::uint8_t>(w.codes8[from]);
      }
  r.codebooks = w.codebooks;
  r.row_scale.assign(static_cast<std::size_t>(r.rows_pad), 0.0f);
  for (int o = 0; o < r.out; ++o) r.row_scale[static_cast<std::size_t>(o)] = w.scales[static_cast<std::size_t>(o)];
}

template <class Tag>
RowsBase repack_with(const HostLayer& l) {
  RowsBase r;
  r.out = l.out_features;
  r.in = l.in_features;
  r.rows_pad = padded(r.out, kRowsPadUnit);
  std::visit(
      [&](const auto& w) {
        using W = std::decay_t<decltype(w)>;
        if constexpr (std::is_same_v<W, DenseWeights>) {
          repack<Tag>(w, r);
        } else if constexpr (std::is_same_v<W, EetqWeights>) {
          repack<Tag>(w, l, r);
        } else if constexpr (std::is_same_v<W, HqqWeights>) {
          if (hqq_runs_fit(w, r.out, r.in)) repack<Tag>(w, l, r);
        } else {
          if (w.out_group == 1 && w.in_group == 8 && (w.num_codebooks == 1 || w.num_codebooks == 2)) repack<Tag>(w, r);
        }
      },
      l.weights);
  return r;
}

}  // namespace

RowsGeometry rows_geometry(RowsKind kind, int out, int in) {
  int lane_inputs = 0;
  switch (kind) {
    case RowsKind::None: return {};
    case RowsKind::Dense: lane_inputs = DenseRows<HalfTag>::kLaneInputs; break;
    case RowsKind::Int8: lane_inputs = Int8Rows<HalfTag>::kLaneInputs; break;
    case RowsKind::Hqq8: lane_inputs = HqqRows<HalfTag, 8>::kLaneInputs; break;
    case RowsKind::Hqq4: lane_inputs = HqqRows<HalfTag, 4>::kLaneInputs; break;
    case RowsKind::Hqq2: lane_inputs = HqqRows<HalfTag, 2>::kLaneInputs; break;
    case RowsKind::Hqq1: lane_inputs = HqqRows<HalfTag, 1>::kLaneInputs; break;
    default: lane_inputs = AqlmRows<HalfTag, 1, std::int16_t>::kLaneInputs; break;
  }
  const int codebooks = kind == RowsKind::Aqlm1x8 ? 1 : kind == RowsKind::Aqlm2x8 ? 2 : 0;
  return {padded(out, kRowsPadUnit), padded(in, 4 * lane_inputs), 4 * lane_inputs,
          codebooks * 256 * 8 * static_cast<int>(sizeof(float))};
}

const char* rows_kind_name(RowsKind kind) {
  switch (kind) {
    case RowsKind::None: return "view";
    case RowsKind::Dense: return "dense";
    case RowsKind::Int8: return "int8";
    case RowsKind::Hqq8: return "hqq8";
    case RowsKind::Hqq4: return "hqq4";
    case RowsKind::Hqq2: return "hqq2";
    case RowsKind::Hqq1: return "hqq1";
    case RowsKind::Aqlm1x16: return "aqlm1x16";
    case RowsKind::Aqlm2x16: return "aqlm2x16";
    case RowsKind::Aqlm1x8: return "aqlm1x8";
    case RowsKind::Aqlm2x8: return "aqlm2x8";
  }
  return "?";
}

double RowsBase::bytes() const {
  const auto sz = [](const auto& v) { return static_cast<double>(v.size() * sizeof(v[0])); };
  return sz(dense) + sz(q) + sz(codes8) + sz(codes16) + sz(scale_bits) + sz(zero_bits) + sz(row_scale) + sz(codebooks);
}

RowsBase repack_rows(const HostLayer& l) {
  switch (l.activations) {
    case Activations::Float16: return repack_with<HalfTag>(l);
    case Activations::BFloat16: return repack_with<BFloat16Tag>(l);
    case Activations::Float32: break;
  }
  RowsBase none;
  none.out = l.out_features;
  none.in = l.in_features;
  return none;
}

}  // namespace qoracle::optimized
