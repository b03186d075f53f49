#include "optimized/forward/launch_plans.hpp"

#include "optimized/forward/dequant.hpp"
#include "optimized/forward/prepass.hpp"
#include "optimized/forward/tc_gemv.hpp"
#include "optimized/forward/tc_rotation.hpp"
#include "optimized/forward/view_gemv.hpp"

namespace qoracle::optimized {

namespace {


long long blocks(long long n, int per) { return (n + per - 1) / per; }

}  // namespace

std::vector<LaunchConfig> forward_launches(const ForwardShape& s, int sms) {
  std::vector<LaunchConfig> out;
  const bool oft = s.rotation_unit > 1, gemv = s.tokens <= kGemvMaxTokens;
  const bool tc_rotation = oft && !gemv && s.sixteen_bit && tc_rotation_fits(s.rotations, s.rotation_unit);
  if (tc_rotation) {
    out.push_back({"tc_rotation_kernel", s.in / s.rotation_unit, blocks(s.tokens, kRotationTokens), 1, kRotationThreads, 0,
                   tc_rotation_shared_bytes(s.rotation_unit), tc_rotation_needs_opt_in(s.rotation_unit)});
  } else if (oft || (gemv && s.rank > 0)) {
    const long long roles = (oft ? s.in / s.rotation_unit : 0) + (gemv ? s.rank : 0);
    const long long token_groups = oft ? (s.tokens + kPrepassTokens - 1) / kPrepassTokens : 1;
    out.push_back({"prepass_kernel", roles, token_groups, 1, kPrepassThreads, 0, prepass_shared_bytes(oft ? s.rotation_unit : 1),
                   false});
  }
  const RowsGeometry g = rows_geometry(s.kind, s.out, s.in);
  if (gemv) {
    if (s.kind != RowsKind::None) {
      const GemvPlan p = plan_gemv(g.rows_pad, g.in_pad, g.k_block, s.tokens, sms, g.max_codebook_bytes);
      out.push_back({"tc_gemv_kernel", p.row_blocks, p.splits, 1, kGemvThreads, kGemvStaticShared, p.shared_bytes, false});
    } else {
      out.push_back({"view_gemv_kernel", blocks(s.out, kViewGemvWarps), 1, 1, 32 * kViewGemvWarps, 0, 0, false});
    }
  } else if (s.kind != RowsKind::None) {
    out.push_back({"dequant_rows_kernel", blocks(static_cast<long long>(s.out) * (g.in_pad / (g.k_block / 4)), kDequantThreads), 1,
                   1, kDequantThreads, 0, 0, false});
  } else {
    out.push_back({"dequant_view_kernel", blocks(static_cast<long long>(s.out) * s.in, kDequantThreads), 1, 1,
                   kDequantThreads, 0, 0, false});
  }
  return out;
}

}  // namespace qoracle::optimized
