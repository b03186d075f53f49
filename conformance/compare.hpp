#pragma once
// The one comparison helper. Every check in qoracle -- CLI, fixture tests, property tests --
// goes through compare() so failures always read the same way (PyTorch assert_close style:
// mismatch count and share, largest absolute and relative difference and where).
#include <cstdint>
#include <string>

#include "fixtures/format/fixture_case.hpp"

namespace qoracle {

struct Comparison {
  bool passed = false;
  bool shape_ok = true;
  std::string shape_message;
  std::int64_t total = 0;
  std::int64_t mismatched = 0;       // elements beyond the bound, or whose non-finite values disagree
  std::int64_t nonfinite_mismatched = 0;
  std::int64_t nan_expected = 0, nan_actual = 0;  // NaN counts, named in the message
  std::int64_t first_nan_index = -1;              // row-major flat index of the first NaN in either
  double max_abs_error = 0.0;        // over finite pairs
  std::int64_t max_abs_index = -1;   // row-major flat index
  double max_rel_error = 0.0;        // max |a - e| / |e| over elements with e != 0
  double rel_frobenius = 0.0;        // ||a - e|| / max(min(||a||, ||e||), tiny)
  double expected_max_abs = 0.0;
  double bound = 0.0;                // atol + rtol * max|expected| + derived
  double derived = 0.0;              // the producer's own error where it grows with the problem
  std::string derived_why;           // (derived_bounds.hpp), and what it was derived from
  Tolerance tolerance;

  std::string message() const;       // one paragraph for a failure
};

// Pass iff the shapes agree, non-finite values agree exactly (NaN with NaN, inf with inf of the
// same sign) and max|actual - expected| <= atol + rtol * max|expected| over the rest. The
// bound is relative to the largest expected magnitude, so cancellation in small entries of a
// well-computed result does not fail it.
// `derived`: an allowance for the producer's own arithmetic computed for this case
// (conformance/derived_bounds.hpp), added to the stored rule and named in the message.
Comparison compare(const Tensor& expected, const Tensor& actual, const Tolerance& tolerance, double derived = 0.0,
                   std::string derived_why = {});

// The fp64-referee rule for low-precision results (PyTorch's dynamo `same` with an fp64 ref):
// `result` passes when its error against the fp64 oracle is at most k times the baseline's own
// error against it, plus a floor of one unit roundoff of `dtype` times max|oracle| so that an
// exact baseline does not make the bound zero.
struct OracleJudgement {
  bool passed = false;
  double result_error = 0.0;
  double baseline_error = 0.0;
  double bound = 0.0;
  std::int64_t nonfinite_as_baseline = 0;      // inf/NaN against a finite oracle, the same in the baseline
  std::int64_t nonfinite_unlike_baseline = 0;  // likewise, but the baseline differs there: a failure
  std::string message() const;
};
OracleJudgement judge_against_oracle(const Tensor& oracle, const Tensor& baseline, const Tensor& result, double k,
                                     Dtype dtype);

}  // namespace qoracle
