#pragma once
// A fixture case's forward through the optimized path (optimized/: the fused kernels), judged
// against the float64 oracle as conformance/TOLERANCES.md says for the case's dtype:
//   float16/bfloat16: the fp64 referee against the producer's own result (the fixture's expected
//     forward), and every output a value of the dtype (the kernels store y in it);
//   float32/float64: the float32 rule (the kernels compute in float32).
#include <functional>
#include <string>
#include <vector>

#include "conformance/case_runner.hpp"
#include "optimized/layer/host_layer.hpp"
#include "reference/eetq_merge.hpp"

namespace qoracle {

// `row` judged: `ours`, the optimized path's forward in `dtype`, against the float64 `oracle`, with
// `producer` (PEFT's result in that dtype, or a stand-in for it) as the fp64 referee's baseline.
CheckRow judge_optimized_forward(CheckRow row, Dtype dtype, const Matrix& oracle, const Matrix& producer, const Matrix& ours);

// A way to run a layer's forward as the kernels take it (HostLayer, x row-major, tokens -> y), and on
// which tokens: the fixture's, and/or those repeated past the GEMV's 8 (the GEMM's side). Its rows
// are "forward@<name>", ending in "-t<tokens>" when it runs on both.
struct ForwardPath {
  std::string name;
  std::function<std::vector<float>(const optimized::HostLayer&, const std::vector<float>&, int)> forward;
  bool fixture_tokens = true, past_the_gemv = true;
};

// The case's forward through each path, each judged by judge_optimized_forward. A case without a
// forward output has no rows; one the paths cannot take gives one Error row naming why.
std::vector<CheckRow> check_case_forward(const FixtureCase& c, const std::vector<ForwardPath>& paths);

// check_case_forward through the optimized paths. One row per path: "forward@optimized-gemv-host" (the case's tokens) and
// "forward@optimized-gemm-host" (its tokens repeated past the GEMV's 8), the kernels' shared code
// run on the host; with a GPU also "...-gpu-t<tokens>" for both token counts, the kernels. A case without
// a forward output has no rows; one the kernels cannot take gives one Error row naming why.
std::vector<CheckRow> check_case_optimized(const FixtureCase& c);

// The GPU merge into a plain linear layer on the same case: where the producer merged its active
// adapters (the case has forward_merged), the layer merged by optimized::dense_merge and run by the
// fused GEMV, judged like the forward against the oracle's unmerged forward (a merge must keep the
// forward). Rows "forward@optimized-dense-merge-host", with a GPU also
// "forward@optimized-dense-merge-gpu"; none for other cases.
std::vector<CheckRow> check_case_optimized_merge(const FixtureCase& c);

// The GPU EETQ merge's result `merged` (`path`: how it was made) against the reference's export of
// the exact float64 merge, by conformance/TOLERANCES.md's EETQ merge rows: "merged_codes@<path>"
// (at most 1e-3 of the codes moved, none by more than one step), "merged_scales@<path>" and, where
// the layer has a bias, "merged_bias@<path>" (one float16 ulp, and every value a float16 one).
std::vector<CheckRow> judge_eetq_merge(const CheckRow& proto, const std::string& path, const EetqMergeExport& exact,
                                       const optimized::HostLayer& merged);

// Every EETQ case with active adapters (PEFT refuses to merge them; this is the export it lacks):
// the adapters merged by optimized::eetq_merge_on_host ("optimized-eetq-merge-host"), with a GPU
// also by optimized::eetq_merge ("optimized-eetq-merge-gpu"), each judged by judge_eetq_merge
// against the reference's eetq_merge_to_dequantized (in PEFT's convention of several OFT adapters
// in reverse order, since its merge composes them in reverse, spec Q9). None for other cases.
std::vector<CheckRow> check_case_optimized_eetq_merge(const FixtureCase& c);

}  // namespace qoracle
