// Properties over the whole case table (conformance/case_table.cpp): each case, named by its
// parameters with its seed, is built with the reference and must satisfy the math.
#include <gtest/gtest.h>

#include "conformance/case_runner.hpp"
#include "conformance/case_table.hpp"
#include "reference/oft_linear.hpp"
#include "test_support.hpp"

using namespace qoracle;
using qoracle::testing::close;

namespace {

class CaseTable : public ::testing::TestWithParam<CaseSpec> {
 protected:
  void SetUp() override { std::cout << "case " << GetParam().name() << " seed=" << GetParam().seed << "\n"; }
  FixtureCase fixture() const { return make_reference_case(GetParam()); }
  Matrix output(const FixtureCase& c, const std::string& name) const {
    return evaluate_case(c, {name}).at(name).as_matrix(name);
  }
  bool is_oft() const { return GetParam().layer_kind == "oft/linear"; }
  bool single_adapter() const { return GetParam().adapters.size() == 1; }
};

std::string case_name(const ::testing::TestParamInfo<CaseSpec>& info) { return info.param.name(); }

}  // namespace

TEST_P(CaseTable, OutputIsNonTrivial) {
  const FixtureCase c = fixture();
  EXPECT_GT(output(c, "forward").norm(), 0.0);  // an all-zero result must not pass anything
}

TEST_P(CaseTable, DisabledAdapterEqualsTheBase) {
  const FixtureCase c = fixture();
  // The base layer's own forward (its float64 product runs through the same BLAS): bit for bit.
  std::optional<Vector> bias;
  if (const Tensor* b = c.base.find("bias")) bias = b->as_vector("b");
  const Matrix y = DenseLinear(c.base.tensor("weight").as_matrix("w"), bias).forward(c.x.as_matrix("x"));
  EXPECT_TRUE(close(y, output(c, "forward_disabled"), 0.0));
}

TEST_P(CaseTable, ExactCayleyRotationsAreOrthogonal) {
  if (!is_oft()) GTEST_SKIP() << "not an OFT case";
  const FixtureCase c = fixture();
  for (const auto& spec : GetParam().adapters) {
    if (spec.oft->use_cayley_neumann) continue;
    const Matrix r = output(c, "delta_weight/" + spec.name);
    EXPECT_TRUE(close(Matrix::Identity(r.rows(), r.cols()), Matrix(r.transpose() * r), 1e-13)) << spec.name;
  }
}

TEST_P(CaseTable, MergedForwardEqualsUnmergedForward) {
  const FixtureCase c = fixture();
  const bool peft_reorders = is_oft() && c.convention == Convention::Peft && !single_adapter();
  const bool equal = close(output(c, "forward"), output(c, "forward_merged"), 1e-12);
  if (!c.dropout_noise.empty())  // the training forward saw x_d, the merged one x
    EXPECT_FALSE(equal) << "a forward with dropout noise is not the merged (eval) map";
  else if (peft_reorders)
    EXPECT_FALSE(equal) << "PEFT merges several OFT adapters in reverse order (spec Q9); this case should show it";
  else
    EXPECT_TRUE(equal);
}

TEST_P(CaseTable, MergeThenUnmergeRestoresTheWeights) {
  const FixtureCase c = fixture();
  // PEFT's OFT unmerge inverts in float32 (spec Q10): a 2^-24-sized round trip, pinned here.
  const bool fp32_inverse = is_oft() && c.convention == Convention::Peft;
  const Matrix w0 = c.base.tensor("weight").as_matrix("w"), w1 = output(c, "unmerged_weight");
  EXPECT_TRUE(close(w0, w1, fp32_inverse ? 1e-6 : 1e-13));
}

INSTANTIATE_TEST_SUITE_P(Standard, CaseTable, ::testing::ValuesIn(standard_cases()), case_name);
