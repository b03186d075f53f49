#include "conformance/optimized_check.hpp"

#include <algorithm>
#include <functional>
#include <string>
#include <variant>

#include "conformance/judge_result.hpp"
#include "conformance/tolerances.hpp"
#include "optimized/device/activation_io.hpp"
#include "optimized/merge/dense_merge.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/merge/eetq_merge.hpp"
#include "optimized/forward/tc_gemv.hpp"
#include "optimized/layer/fused_layer.hpp"
#include "optimized/layer/resident_layer.hpp"
#include "reference/dtype.hpp"
#include "reference/error.hpp"

namespace qoracle {

namespace {

// The rows of m repeated until there are more than kGemvMaxTokens of them.
Matrix past_the_gemv(const Matrix& m) {
  const auto reps = static_cast<Eigen::Index>(optimized::kGemvMaxTokens / m.rows() + 1);
  return m.replicate(reps, 1);
}

}  // namespace

CheckRow judge_optimized_forward(CheckRow row, Dtype dtype, const Matrix& oracle, const Matrix& producer, const Matrix& ours) {
  // The kernels compute in float32 for float32 and float64 cases alike.
  return judge_result(std::move(row), dtype == Dtype::Float64 ? Dtype::Float32 : dtype, Tensor::from_matrix(oracle, Dtype::Float64),
                      Tensor::from_matrix(producer, Dtype::Float64), Tensor::from_matrix(ours, Dtype::Float64));
}

std::vector<CheckRow> check_case_forward(const FixtureCase& c, const std::vector<ForwardPath>& paths) {
  const ExpectedOutput* expected = nullptr;
  for (const ExpectedOutput& e : c.expected)
    if (e.name == "forward") expected = &e;
  // The fused kernels run the eval forward; a forward with recorded dropout noise is the reference's alone.
  if (!expected || !c.dropout_noise.empty()) return {};
  CheckRow proto = case_row(c);
  proto.output = "forward@optimized";
  std::vector<CheckRow> rows;
  try {
    const Matrix x = c.x.as_matrix("inputs/x");
    const Matrix producer = expected->value.as_matrix("expected/forward");
    const Matrix oracle = std::visit([&](const auto& l) { return l.forward(x); }, fixture_layer(c, Dtype::Float64));
    const optimized::HostLayer layer =
        std::visit([](const auto& l) { return optimized::host_layer(l); }, fixture_layer(c, c.dtype));
    const Matrix x2 = past_the_gemv(x), oracle2 = past_the_gemv(oracle), producer2 = past_the_gemv(producer);
    for (const ForwardPath& path : paths)
      for (const bool repeated : {false, true}) {
        if (!(repeated ? path.past_the_gemv : path.fixture_tokens)) continue;
        const Matrix& xs = repeated ? x2 : x;
        const auto tokens = static_cast<int>(xs.rows());
        CheckRow row = proto;
        row.output = "forward@" + path.name;
        if (path.fixture_tokens && path.past_the_gemv) row.output += "-t" + std::to_string(tokens);
        try {
          const Matrix ours = optimized::from_floats(path.forward(layer, optimized::to_floats(xs), tokens), tokens, layer.out_features);
          rows.push_back(judge_optimized_forward(row, c.dtype, repeated ? oracle2 : oracle, repeated ? producer2 : producer, ours));
        } catch (const Error& e) {
          row.error = e.what();
          rows.push_back(row);
        }
      }
  } catch (const Error& e) {
    proto.error = e.what();
    rows.push_back(proto);
  }
  return rows;
}

std::vector<CheckRow> check_case_optimized(const FixtureCase& c) {
  std::vector<ForwardPath> paths = {{"optimized-gemv-host", optimized::fused_gemv_on_host, true, false},
                                    {"optimized-gemm-host", optimized::fused_gemm_on_host, false, true}};
  // With a GPU, the kernels (the GEMV or the GEMM follows from the token count).
  if (optimized::probe_device().available) paths.push_back({"optimized-gpu", optimized::fused_forward, true, true});
  return check_case_forward(c, paths);
}

std::vector<CheckRow> check_case_optimized_merge(const FixtureCase& c) {
  const bool dense = c.layer_kind == "oft/linear" || c.layer_kind == "lora/linear";
  const bool merged = std::any_of(c.expected.begin(), c.expected.end(),
                                  [](const ExpectedOutput& e) { return e.name == "forward_merged"; });
  const bool merges_the_active = c.merge_adapters.empty() || c.merge_adapters == c.active_adapters;
  if (!dense || !merged || !merges_the_active || c.active_adapters.empty()) return {};
  // OFT blocks of 1 are the identity, which host_layer leaves out: such a layer merges to itself.
  const auto unmerged = [](const optimized::HostLayer& l) { return l.oft.empty() && l.rank == 0; };
  std::vector<ForwardPath> paths = {
      {"optimized-dense-merge-host",
       [=](const optimized::HostLayer& l, const std::vector<float>& x, int tokens) {
         return optimized::fused_gemv_on_host(unmerged(l) ? l : optimized::dense_merge_on_host(l), x, tokens);
       },
       true, false}};
  if (optimized::probe_device().available)
    paths.push_back({"optimized-dense-merge-gpu",
                     [=](const optimized::HostLayer& l, const std::vector<float>& x, int tokens) {
                       return optimized::fused_forward(unmerged(l) ? l : optimized::dense_merge(l), x, tokens);
                     },
                     true, false});
  return check_case_forward(c, paths);
}

std::vector<CheckRow> judge_eetq_merge(const CheckRow& proto, const std::string& path, const EetqMergeExport& exact,
                                       const optimized::HostLayer& merged) {
  std::vector<CheckRow> rows;
  const auto judged = [&](const std::string& output, const Tensor& expected, const Tensor& actual, Tolerance t) {
    CheckRow row = proto;
    row.output = output + "@" + path;
    row.comparison = compare(expected, actual, t);
    row.status = row.comparison.passed ? CheckStatus::Pass : CheckStatus::Fail;
    return row;
  };
  const auto fail = [](CheckRow row, const std::string& why) {
    row.status = CheckStatus::Fail;
    row.error = why;
    return row;
  };
  const auto vec = [](const Vector& v) { return Tensor::from_vector(v, Dtype::Float64); };
  try {
    const EetqLinear ours = optimized::eetq_base_of(merged);
    const Tensor expected_codes = Tensor::from_matrix(exact.layer.quantized().q.cast<double>(), Dtype::Float64);
    const Tensor codes = Tensor::from_matrix(ours.quantized().q.cast<double>(), Dtype::Float64);
    const CheckRow moved = judged("merged_codes", expected_codes, codes, Tolerance{0, 0, 1e-3});
    const Comparison step = compare(expected_codes, codes, Tolerance{1, 0});
    rows.push_back(step.passed ? moved : fail(moved, "codes more than one step from the exact merge's: " + step.message()));
    rows.push_back(
        judged("merged_scales", vec(exact.layer.quantized().scales), vec(ours.quantized().scales), Tolerance{0, 1e-3}));
    if (exact.layer.bias()) {
      const CheckRow bias =
          judged("merged_bias", vec(*exact.layer.bias()), vec(ours.bias().value_or(Vector())), Tolerance{0, 1e-3});
      const bool float16 = optimized::round_activations(merged.bias, optimized::Activations::Float16) == merged.bias;
      rows.push_back(float16 ? bias : fail(bias, "the merged bias holds values that are not float16, the dtype EETQ stores it in"));
    }
  } catch (const Error& e) {
    CheckRow row = proto;
    row.output = "merged_codes@" + path;
    row.error = e.what();
    rows.push_back(row);
  }
  return rows;
}

std::vector<CheckRow> check_case_optimized_eetq_merge(const FixtureCase& c) {
  const bool eetq = c.layer_kind == "oft/eetq" || c.layer_kind == "lora/eetq";
  if (!eetq || c.active_adapters.empty()) return {};
  CheckRow proto = case_row(c);
  try {
    const FixtureLayer layer = fixture_layer(c, Dtype::Float64);
    // The GPU merge keeps the forward. PEFT's convention composes several OFT adapters in reverse
    // when it merges (spec Q9), so there the forward-keeping merge is the reference's of the
    // adapters in reverse order.
    std::vector<std::string> names = c.active_adapters;
    if (c.convention == Convention::Peft && c.layer_kind == "oft/eetq") std::reverse(names.begin(), names.end());
    const EetqMergeExport exact = std::visit(
        [&](const auto& l) -> EetqMergeExport {
          if constexpr (requires { eetq_merge_to_dequantized(l, names); })
            return eetq_merge_to_dequantized(l, names);
          else
            throw Error("layer: an EETQ case with another base");
        },
        layer);
    const optimized::HostLayer host = std::visit([](const auto& l) { return optimized::host_layer(l); }, layer);
    std::vector<CheckRow> rows = judge_eetq_merge(proto, "optimized-eetq-merge-host", exact,
                                                  optimized::eetq_merge_on_host(host));
    if (optimized::probe_device().available) {
      const auto gpu = judge_eetq_merge(proto, "optimized-eetq-merge-gpu", exact, optimized::eetq_merge(host));
      rows.insert(rows.end(), gpu.begin(), gpu.end());
    }
    return rows;
  } catch (const Error& e) {
    proto.output = "merged_codes@optimized-eetq-merge";
    proto.error = e.what();
    return {proto};
  }
}

}  // namespace qoracle
