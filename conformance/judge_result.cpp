#include "conformance/judge_result.hpp"

#include <algorithm>

#include "conformance/tolerances.hpp"
#include "reference/dtype.hpp"

namespace qoracle {

CheckRow judge_result(CheckRow row, Dtype dtype, const Tensor& oracle, const Tensor& producer, const Tensor& result) {
  if (dtype == Dtype::Float64 || dtype == Dtype::Float32) {
    const std::string output = row.output.substr(0, row.output.find('@'));
    const Convention convention = row.convention.empty() ? Convention::Math : parse_convention(row.convention);
    row.comparison = compare(oracle, result,
                             dtype == Dtype::Float32 ? float32_against_oracle() : tolerance_for(dtype, output, convention));
    row.status = row.comparison.passed ? CheckStatus::Pass : CheckStatus::Fail;
    return row;
  }
  row.referee = judge_against_oracle(oracle, producer, result, oracle_factor(dtype), dtype);
  row.status = row.referee->passed ? CheckStatus::Pass : CheckStatus::Fail;
  // NaN is no value of any dtype, so it fails here too.
  const bool of_the_dtype = std::all_of(result.values.begin(), result.values.end(),
                                        [&](double v) { return round_to(dtype, v) == v; });
  if (!of_the_dtype) {
    row.status = CheckStatus::Fail;
    row.error = std::string("the result holds values that are not ") + dtype_name(dtype) + ", the dtype it was computed in";
  }
  return row;
}

}  // namespace qoracle
