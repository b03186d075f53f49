#include "conformance/compare.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace qoracle {

namespace {

bool same_nonfinite(double a, double e) {
  if (std::isnan(a) || std::isnan(e)) return std::isnan(a) && std::isnan(e);
  return a == e;  // both infinite here, so equal means same sign
}

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(3);
  s << std::scientific << v;
  return s.str();
}

double max_abs_finite(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v)
    if (std::isfinite(x)) m = std::max(m, std::abs(x));
  return m;
}

}  // namespace

Comparison compare(const Tensor& expected, const Tensor& actual, const Tolerance& tolerance, double derived,
                   std::string derived_why) {
  Comparison c;
  c.tolerance = tolerance;
  c.derived = derived;
  c.derived_why = std::move(derived_why);
  c.total = expected.element_count();
  if (expected.shape != actual.shape || expected.values.size() != actual.values.size()) {
    c.shape_ok = false;
    c.shape_message = "shape mismatch: expected " + expected.shape_string() + ", got " + actual.shape_string();
    return c;
  }
  c.expected_max_abs = max_abs_finite(expected.values);
  c.bound = tolerance.atol + tolerance.rtol * c.expected_max_abs + c.derived;
  double diff2 = 0.0, e2 = 0.0, a2 = 0.0;
  for (std::size_t i = 0; i < expected.values.size(); ++i) {
    const double e = expected.values[i], a = actual.values[i];
    if (std::isnan(e) || std::isnan(a)) {
      c.nan_expected += std::isnan(e);
      c.nan_actual += std::isnan(a);
      if (c.first_nan_index < 0) c.first_nan_index = static_cast<std::int64_t>(i);
    }
    if (!std::isfinite(e) || !std::isfinite(a)) {
      if (!same_nonfinite(a, e)) {
        ++c.mismatched;
        ++c.nonfinite_mismatched;
      }
      continue;
    }
    const double d = std::abs(a - e);
    diff2 += d * d;
    e2 += e * e;
    a2 += a * a;
    if (c.max_abs_index < 0 || d > c.max_abs_error) {
      c.max_abs_error = d;
      c.max_abs_index = static_cast<std::int64_t>(i);
    }
    if (e != 0.0) c.max_rel_error = std::max(c.max_rel_error, d / std::abs(e));
    if (d > c.bound) ++c.mismatched;
  }
  const double denom = std::max(std::sqrt(std::min(e2, a2)), std::numeric_limits<double>::min());
  c.rel_frobenius = diff2 == 0.0 ? 0.0 : std::sqrt(diff2) / denom;
  // Non-finite disagreements always fail; otherwise a stated share of elements may be off.
  c.passed = c.nonfinite_mismatched == 0 &&
             static_cast<double>(c.mismatched) <= tolerance.max_mismatch_fraction * static_cast<double>(c.total);
  return c;
}

std::string Comparison::message() const {
  if (!shape_ok) return shape_message;
  std::ostringstream s;
  s << (passed ? "close" : "not close") << ": mismatched elements " << mismatched << " / " << total << " ("
    << (total ? 100.0 * static_cast<double>(mismatched) / static_cast<double>(total) : 0.0) << "%)";
  if (nan_expected || nan_actual)
    s << "; NaN: " << nan_expected << " in expected, " << nan_actual << " in actual (first at flat index "
      << first_nan_index << ")";
  if (max_abs_index < 0)
    s << "; no pair of finite values to compare";
  else
    s << "; greatest absolute difference " << fmt(max_abs_error) << " at flat index " << max_abs_index;
  s << " (allowed " << fmt(bound) << " = atol " << fmt(tolerance.atol) << " + rtol " << fmt(tolerance.rtol)
    << " * max|expected| " << fmt(expected_max_abs)
    << (derived > 0 ? " + derived " + fmt(derived) + " [" + derived_why + "]" : "")
    << (tolerance.max_mismatch_fraction > 0 ? ", " + fmt(tolerance.max_mismatch_fraction) + " of elements may be off" : "")
    << ")"
    << "; greatest relative difference " << fmt(max_rel_error) << "; relative Frobenius " << fmt(rel_frobenius);
  return s.str();
}

OracleJudgement judge_against_oracle(const Tensor& oracle, const Tensor& baseline, const Tensor& result, double k,
                                     Dtype dtype) {
  OracleJudgement j;
  const Comparison rb = compare(oracle, baseline, {});
  const Comparison rr = compare(oracle, result, {});
  if (!rb.shape_ok || !rr.shape_ok) return j;
  j.baseline_error = rb.max_abs_error;
  j.result_error = rr.max_abs_error;
  j.bound = k * j.baseline_error + unit_roundoff(dtype) * rb.expected_max_abs;
  // Where the result is non-finite and the oracle is not (or the other way round), the baseline
  // decides: the same inf (an overflow of the dtype the producer has too) is as good as it gets.
  for (std::size_t i = 0; i < oracle.values.size(); ++i) {
    const double o = oracle.values[i], b = baseline.values[i], r = result.values[i];
    if ((std::isfinite(o) && std::isfinite(r)) || same_nonfinite(r, o)) continue;
    ++(same_nonfinite(r, b) ? j.nonfinite_as_baseline : j.nonfinite_unlike_baseline);
  }
  j.passed = j.nonfinite_unlike_baseline == 0 && j.result_error <= j.bound;
  return j;
}

std::string OracleJudgement::message() const {
  std::ostringstream s;
  s << (passed ? "within" : "beyond") << " the fp64-referee bound: error vs oracle " << fmt(result_error)
    << ", baseline's own error " << fmt(baseline_error) << ", allowed " << fmt(bound);
  if (nonfinite_unlike_baseline)
    s << "; " << nonfinite_unlike_baseline << " element(s) non-finite on one side of the oracle, and the baseline is not";
  if (nonfinite_as_baseline)
    s << "; " << nonfinite_as_baseline << " element(s) non-finite where the oracle is finite, as the baseline's (the dtype overflows)";
  return s.str();
}

}  // namespace qoracle
