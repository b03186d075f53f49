#include "reference/hqq_quantizer.hpp"

#include <cmath>
#include <limits>
#include <type_traits>

#include "reference/error.hpp"
#include "reference/torch_cpu_sum.hpp"
#include "reference/validate.hpp"

namespace qoracle {

const char* hqq_arithmetic_name(HqqArithmetic a) { return a == HqqArithmetic::Float64 ? "float64" : "float32-cpu"; }

HqqArithmetic parse_hqq_arithmetic(const std::string& name) {
  if (name == "float64") return HqqArithmetic::Float64;
  if (name == "float32-cpu") return HqqArithmetic::Float32Cpu;
  throw Error("quantizer_arithmetic: expected 'float64' or 'float32-cpu', got '" + name + "'");
}

namespace {

// T is the working type: every arithmetic expression on T values rounds to T (SSE, no excess
// precision). In float32 the means are torch's own sums (torch_cpu_sum: its order of float32
// additions), because near a rounding boundary a last-bit difference in a zero flips codes; the
// float64 oracle accumulates exactly.
template <class T>
struct Quantizer {
  const HqqConfig& cfg;
  HqqGrouping grouping;
  Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> g;  // grouped weight
  std::vector<T> inv, zero;

  int group_of(Eigen::Index r, Eigen::Index c) const { return cfg.axis == 1 ? static_cast<int>(r) : static_cast<int>(c); }
  int group_count() const { return cfg.axis == 1 ? grouping.cols : grouping.rows; }  // elements per group

  T code(T w, int grp) const {  // clamp(rint(w * inv + z), 0, max)
    const T v = std::nearbyint(static_cast<T>(w * inv[grp]) + zero[grp]);
    return std::clamp(v, T(0), static_cast<T>(grouping.max_code));
  }

  T shrink(T x) const {  // sign(x) * max(|x| - (1/beta) |x|^(p-1), 0); 0 at x = 0 (inf is clamped away)
    const T ax = std::abs(x);
    const T t = static_cast<T>(static_cast<T>(1.0 / cfg.beta) * std::pow(ax, static_cast<T>(cfg.lp_norm - 1.0)));
    T out = ax - t;
    if (!(out > T(0))) out = T(0);
    return x > T(0) ? out : x < T(0) ? -out : T(0);
  }

  void initial_scale_and_zero() {
    const int n = grouping.groups;
    std::vector<T> lo(n, std::numeric_limits<T>::infinity()), hi(n, -std::numeric_limits<T>::infinity());
    for (Eigen::Index r = 0; r < g.rows(); ++r)
      for (Eigen::Index c = 0; c < g.cols(); ++c) {
        const int k = group_of(r, c);
        lo[k] = std::min(lo[k], g(r, c));
        hi[k] = std::max(hi[k], g(r, c));
      }
    inv.resize(n);
    zero.resize(n);
    for (int k = 0; k < n; ++k) {
      const T denom = hi[k] - lo[k];
      // max_v / denom: torch computes reciprocal(denom) * max_v, two roundings.
      T s = static_cast<T>(static_cast<T>(T(1) / denom) * static_cast<T>(grouping.max_code));
      if (std::abs(denom) <= static_cast<T>(1e-4)) s = T(1);  // hqq >= 0.2.7: avoid tiny ranges
      s = std::min(s, static_cast<T>(2e4));
      inv[k] = s;
      zero[k] = static_cast<T>(-lo[k] * s);
      if (cfg.round_zero) zero[k] = std::nearbyint(zero[k]);
    }
  }

  // One legacy proximal step; returns the global mean |G - W_r| under the zero it started with.
  T step() {
    const int n = grouping.groups;
    const auto rows = g.rows(), cols = g.cols();
    std::vector<T> target(static_cast<std::size_t>(rows * cols)), err(target.size());
    for (Eigen::Index r = 0; r < rows; ++r)
      for (Eigen::Index c = 0; c < cols; ++c) {
        const int k = group_of(r, c);
        const T w = g(r, c);
        const T q = code(w, k);
        const T wr = static_cast<T>(static_cast<T>(q - zero[k]) / inv[k]);
        const T we = shrink(static_cast<T>(w - wr));
        target[r * cols + c] = static_cast<T>(q - static_cast<T>(static_cast<T>(w - we) * inv[k]));
        err[r * cols + c] = std::abs(static_cast<T>(w - wr));
      }
    // zero = mean(target, axis); error = mean(|W - W_r|): torch sums, then divides once.
    std::vector<T> sums;
    T err_sum;
    if constexpr (std::is_same_v<T, float>) {
      sums = cfg.axis == 1 ? torch_cpu_sum_inner(target, rows, cols, kTorchSumLanes)
                           : torch_cpu_sum_outer(target, rows, cols, kTorchSumLanes);
      err_sum = torch_cpu_sum_all(err, kTorchSumLanes);
    } else {
      sums.assign(static_cast<std::size_t>(n), T(0));
      for (Eigen::Index r = 0; r < rows; ++r)
        for (Eigen::Index c = 0; c < cols; ++c) sums[group_of(r, c)] += target[r * cols + c];
      err_sum = T(0);
      for (T e : err) err_sum += e;
    }
    for (int k = 0; k < n; ++k) zero[k] = static_cast<T>(sums[k] / static_cast<T>(group_count()));
    return static_cast<T>(err_sum / static_cast<T>(g.size()));
  }

  HqqQuantized run(const Matrix& weight) {
    g = hqq_grouped(weight, grouping).template cast<T>().array();
    initial_scale_and_zero();
    HqqQuantized out;
    out.config = cfg;
    out.out_features = static_cast<int>(weight.rows());
    out.in_features = static_cast<int>(weight.cols());
    if (cfg.optimize) {
      // Early stop on the first non-improving step, but that step's zero update is kept (hqq).
      T best = std::numeric_limits<T>::infinity();
      for (int i = 0; i < cfg.iters; ++i) {
        ++out.steps;
        const T err = step();
        if (err < best) best = err;
        else break;
      }
    }
    out.codes.resize(g.rows(), g.cols());
    for (Eigen::Index r = 0; r < g.rows(); ++r)
      for (Eigen::Index c = 0; c < g.cols(); ++c) out.codes(r, c) = static_cast<int>(code(g(r, c), group_of(r, c)));
    out.scale.resize(grouping.groups);
    out.zero.resize(grouping.groups);
    for (int k = 0; k < grouping.groups; ++k) {
      out.scale(k) = static_cast<double>(static_cast<T>(T(1) / inv[k]));  // stored scale = 1 / inv
      out.zero(k) = static_cast<double>(zero[k]);
    }
    return out;
  }
};

}  // namespace

HqqQuantized hqq_quantize(const Matrix& weight, const HqqConfig& config, HqqArithmetic arithmetic) {
  const HqqGrouping grouping =
      hqq_grouping(config, static_cast<int>(weight.rows()), static_cast<int>(weight.cols()));
  require_finite(weight, "weight to quantize");
  if (arithmetic == HqqArithmetic::Float64) return Quantizer<double>{config, grouping, {}, {}, {}}.run(weight);
  return Quantizer<float>{config, grouping, {}, {}, {}}.run(round_to(Dtype::Float32, weight));
}

Matrix hqq_dequantize(const HqqQuantized& q, Dtype compute) {
  Matrix grouped(q.codes.rows(), q.codes.cols());
  for (Eigen::Index r = 0; r < q.codes.rows(); ++r)
    for (Eigen::Index c = 0; c < q.codes.cols(); ++c) {
      const Eigen::Index k = q.config.axis == 1 ? r : c;
      const double s = round_to(compute, q.scale(k)), z = round_to(compute, q.zero(k));
      grouped(r, c) = round_to(compute, round_to(compute, q.codes(r, c) - z) * s);
    }
  return hqq_ungrouped(grouped, q.out_features, q.in_features);
}

}  // namespace qoracle
