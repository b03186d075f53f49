#pragma once
// A base layer repacked into one of the row layouts of optimized/forward/row_layouts.hpp (host
// data), and the visitor that builds the layout's view over it wherever it lives (the host's
// vectors, or their device copies). Layers the layouts do not cover (float32 activations, hqq's
// axis 0 or groups that split 16-input runs, AQLM with output groups or other input groups) keep
// their stored tensors and take the view path (optimized/forward/view_gemv.hpp).
#include <cstdint>
#include <variant>
#include <vector>

#include "optimized/forward/row_layouts.hpp"
#include "optimized/layer/host_layer.hpp"

namespace qoracle::optimized {

enum class RowsKind { None, Dense, Int8, Hqq8, Hqq4, Hqq2, Hqq1, Aqlm1x16, Aqlm2x16, Aqlm1x8, Aqlm2x8 };
const char* rows_kind_name(RowsKind kind);

struct RowsBase {
  RowsKind kind = RowsKind::None;
  int out = 0, in = 0, rows_pad = 0, in_pad = 0;
  std::vector<std::uint16_t> dense;   // Dense: [rows_pad][in_pad] dtype bits
  std::vector<std::int8_t> q;         // Int8: [rows_pad][in_pad]
  std::vector<std::uint8_t> codes8;   // Hqq*: packed codes; Aqlm *x8: codes
  std::vector<std::int16_t> codes16;  // Aqlm *x16
  std::vector<std::uint16_t> scale_bits, zero_bits;  // Hqq: per group, dtype bits
  std::vector<float> row_scale;       // Int8, Aqlm: [rows_pad]
  std::vector<float> codebooks;       // Aqlm: [C][2^nbits][8]
  int group_size = 0, nbits = 0;
  long long groups = 0;
  // The bytes a forward reads from this layout (codes, scales, zeros, codebooks): what the
  // memory floor counts for the GEMV.
  double bytes() const;
};

// A kind's padded sizes and K block (4 lanes' runs), as the repack makes them and the GEMV plans.
struct RowsGeometry {
  int rows_pad = 0, in_pad = 0, k_block = 0;
  int max_codebook_bytes = 0;  // the most the GEMV puts in shared memory for codebooks (8-bit AQLM)
};
RowsGeometry rows_geometry(RowsKind kind, int out, int in);

// The layer's base in its row layout (kind None: not covered, or float32 activations).
RowsBase repack_rows(const HostLayer& layer);

template <class Tag>
using RowsLayouts = std::variant<DenseRows<Tag>, Int8Rows<Tag>, HqqRows<Tag, 8>, HqqRows<Tag, 4>, HqqRows<Tag, 2>,
                                 HqqRows<Tag, 1>, AqlmRows<Tag, 1, std::int16_t>, AqlmRows<Tag, 2, std::int16_t>,
                                 AqlmRows<Tag, 1, std::int8_t>, AqlmRows<Tag, 2, std::int8_t>>;
// A row layout of either 16-bit dtype, or none (the view path).
using AnyRowsLayout = std::variant<std::monostate, RowsLayouts<HalfTag>, RowsLayouts<BFloat16Tag>>;

template <class Tag, int NBITS, class At>
HqqRows<Tag, NBITS> hqq_rows(const RowsBase& rows, At at) {
  return {at(rows.codes8), at(rows.scale_bits), at(rows.zero_bits), rows.in, rows.in_pad, rows.group_size, rows.groups};
}

// Calls f(layout) with the layout view of `rows` for activation dtype tag Tag, its tensors at
// at(vector) (the host's vectors or their device copies).
template <class Tag, class At, class F>
void with_rows_layout(const RowsBase& rows, At at, F f) {
  switch (rows.kind) {
    case RowsKind::Dense: return f(DenseRows<Tag>{at(rows.dense), rows.in_pad});
    case RowsKind::Int8: return f(Int8Rows<Tag>{at(rows.q), at(rows.row_scale), rows.in_pad});
    case RowsKind::Hqq8: return f(hqq_rows<Tag, 8>(rows, at));
    case RowsKind::Hqq4: return f(hqq_rows<Tag, 4>(rows, at));
    case RowsKind::Hqq2: return f(hqq_rows<Tag, 2>(rows, at));
    case RowsKind::Hqq1: return f(hqq_rows<Tag, 1>(rows, at));
    case RowsKind::Aqlm1x16:
      return f(AqlmRows<Tag, 1, std::int16_t>{at(rows.codes16), at(rows.codebooks), at(rows.row_scale), rows.in_pad, rows.nbits});
    case RowsKind::Aqlm2x16:
      return f(AqlmRows<Tag, 2, std::int16_t>{at(rows.codes16), at(rows.codebooks), at(rows.row_scale), rows.in_pad, rows.nbits});
    case RowsKind::Aqlm1x8:
      return f(AqlmRows<Tag, 1, std::int8_t>{reinterpret_cast<const std::int8_t*>(at(rows.codes8)), at(rows.codebooks),
                                             at(rows.row_scale), rows.in_pad, rows.nbits});
    case RowsKind::Aqlm2x8:
      return f(AqlmRows<Tag, 2, std::int8_t>{reinterpret_cast<const std::int8_t*>(at(rows.codes8)), at(rows.codebooks),
                                             at(rows.row_scale), rows.in_pad, rows.nbits});
    case RowsKind::None: break;
  }
}

// The layout of `rows` for `dtype`, its tensors at at(vector) (kept by the caller).
template <class At>
AnyRowsLayout rows_layout(const RowsBase& rows, Activations dtype, At at) {
  AnyRowsLayout out;
  if (rows.kind == RowsKind::None) return out;
  if (dtype == Activations::Float16)
    with_rows_layout<HalfTag>(rows, at, [&](const auto& l) { out = RowsLayouts<HalfTag>(l); });
  else if (dtype == Activations::BFloat16)
    with_rows_layout<BFloat16Tag>(rows, at, [&](const auto& l) { out = RowsLayouts<BFloat16Tag>(l); });
  return out;
}

}  // namespace qoracle::optimized
