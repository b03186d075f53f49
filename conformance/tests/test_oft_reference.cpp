// OFT reference against independent values: closed forms, hand-worked vectors from
// ../shared/spec/peft-oft-lora.md §7 (verified there against PEFT), and spectral identities.
#include <gtest/gtest.h>

#include <cmath>

#include "reference/seeded_random.hpp"
#include "reference/cayley.hpp"
#include "reference/coft.hpp"
#include "reference/oft_linear.hpp"
#include "reference/skew.hpp"
#include "test_support.hpp"

using namespace qoracle;
using qoracle::testing::close;
using qoracle::testing::row;
using qoracle::testing::rows;

namespace {

OftConfig config(int r, int b, bool neumann, int terms) {
  OftConfig c;
  c.r = r;
  c.oft_block_size = b;
  c.use_cayley_neumann = neumann;
  c.num_cayley_neumann_terms = terms;
  return c;
}

// Spec case A: in=4, out=3, b=2, r=2.
OftLinear case_a(const OftConfig& c, Convention conv) {
  OftLinear layer(DenseLinear(rows({{1, 2, 3, 4}, {0, -1, 1, 2}, {2, 0, -2, 1}}), Vector::Map(std::array{0.0, 0.5, 1.0}.data(), 3)),
                  conv);
  layer.add_adapter("default", c, rows({{0.1}, {-0.2}}));
  return layer;
}

double spectral_norm(const Matrix& m) { return Eigen::JacobiSVD<Matrix>(m).singularValues()(0); }
double spectral_radius_of_skew(const Matrix& s) { return spectral_norm(s); }  // S is normal

Matrix random_skew(int b, double rho, std::uint64_t seed) {
  SeededRandom rng(seed);
  Matrix s = skew_from_params(rng.normal(skew_param_count(b), 1, 1.0).col(0), b);
  return s * (rho / spectral_radius_of_skew(s));
}

}  // namespace

TEST(Skew, FillsTheUpperTriangleRowMajor) {
  const Matrix s = skew_from_params(Vector::LinSpaced(6, 1, 6), 4);
  EXPECT_TRUE(close(rows({{0, 1, 2, 3}, {-1, 0, 4, 5}, {-2, -4, 0, 6}, {-3, -5, -6, 0}}), s, 0.0));
  EXPECT_TRUE(close(Vector::LinSpaced(6, 1, 6), params_from_skew(s), 0.0));
}

TEST(Cayley, TwoByTwoClosedForms) {
  // R = a I + c S for S = [[0, t], [-t, 0]] (spec §7.2 table).
  const double t = 0.1, t2 = t * t;
  const Matrix s = skew_from_params(Vector::Constant(1, t), 2);
  const Matrix id = Matrix::Identity(2, 2);
  auto form = [&](double a, double c) { return Matrix(a * id + c * s); };
  EXPECT_TRUE(close(form((1 - t2) / (1 + t2), -2 / (1 + t2)), cayley_exact(s), 1e-15));
  EXPECT_TRUE(close(rows({{0.98019801980198018, -0.19801980198019803}, {0.19801980198019803, 0.98019801980198018}}),
                    cayley_exact(s), 1e-15));
  const Convention P = Convention::Peft;
  EXPECT_TRUE(close(id, cayley_neumann(s, 1, P), 0.0));
  EXPECT_TRUE(close(form(1, 2), cayley_neumann(s, 2, P), 1e-15));
  EXPECT_TRUE(close(form(1 - 2 * t2, 2 - t2), cayley_neumann(s, 3, P), 1e-15));
  EXPECT_TRUE(close(form(1 - 2 * t2, 2 - t2), cayley_neumann(s, 4, P), 1e-15));
  EXPECT_TRUE(close(form((1 - t2) * (1 - t2), 2 * (1 - t2)), cayley_neumann(s, 5, P), 1e-15));
  EXPECT_TRUE(close(form(1 - 2 * t2 + 2 * t2 * t2, 2 - 2 * t2 + t2 * t2), cayley_neumann(s, 6, P), 1e-15));
  EXPECT_TRUE(close(form(1 - 2 * t2 + 2 * t2 * t2 - t2 * t2 * t2, 2 - 2 * t2 + 2 * t2 * t2), cayley_neumann(s, 7, P), 1e-15));
}

TEST(Cayley, ExactIsOrthogonal) {
  for (int b : {2, 3, 8, 32, 64}) {
    for (double rho : {0.05, 1.0, 20.0}) {  // far outside the Neumann radius too
      const std::uint64_t seed = 1000 + static_cast<std::uint64_t>(b);
      QORACLE_SEED_TRACE(seed);
      const Matrix r = cayley_exact(random_skew(b, rho, seed));
      EXPECT_TRUE(close(Matrix::Identity(b, b), Matrix(r.transpose() * r), 1e-13)) << "b=" << b << " rho=" << rho;
    }
  }
}

TEST(Cayley, PeftTermCountsThreeAndFourAreTheSamePolynomial) {
  const Matrix s = random_skew(6, 0.3, 42);
  EXPECT_EQ(cayley_neumann(s, 3, Convention::Peft), cayley_neumann(s, 4, Convention::Peft));  // bit-identical
  EXPECT_NE(cayley_neumann(s, 3, Convention::Math), cayley_neumann(s, 4, Convention::Math));
}

// S is normal, so every polynomial/rational function of it has spectral norm equal to the
// largest |f(i lambda)|: the truncation errors are exact powers of rho(S).
TEST(Cayley, NeumannTruncationErrorIsExactlyRhoToTheTerms) {
  for (int b : {4, 8, 16}) {
    for (double rho : {0.1, 0.3, 0.6}) {
      const std::uint64_t seed = 77 + static_cast<std::uint64_t>(b);
      QORACLE_SEED_TRACE(seed);
      const Matrix s = random_skew(b, rho, seed);
      const Matrix exact = cayley_exact(s);
      for (int n = 1; n <= 7; ++n) {
        // Math: approximates the exact rotation, error rho^n.
        const double math_err = spectral_norm(cayley_neumann(s, n, Convention::Math) - exact);
        EXPECT_NEAR(math_err, std::pow(rho, n), 1e-12) << "math b=" << b << " rho=" << rho << " n=" << n;
        // Peft: approximates the TRANSPOSE of the exact rotation; error rho^max(3, n-1) for n >= 3.
        if (n >= 3) {
          const double peft_err = spectral_norm(cayley_neumann(s, n, Convention::Peft) - exact.transpose());
          EXPECT_NEAR(peft_err, std::pow(rho, std::max(3, n - 1)), 1e-12) << "peft b=" << b << " rho=" << rho << " n=" << n;
        }
      }
      // The PEFT series is the opposite rotation: far from the exact one, close to its inverse.
      const Matrix peft5 = cayley_neumann(s, 5, Convention::Peft);
      EXPECT_GT(spectral_norm(peft5 - exact), rho);
      EXPECT_TRUE(close(Matrix::Identity(b, b), Matrix(peft5 * exact), 2 * std::pow(rho, 4)));
    }
  }
}

TEST(Cayley, PeftNeumannIsNotOrthogonal) {
  const double t = 0.1;
  const Matrix r = cayley_neumann(skew_from_params(Vector::Constant(1, t), 2), 5, Convention::Peft);
  const Matrix defect = r.transpose() * r - Matrix::Identity(2, 2);
  EXPECT_NEAR(defect(0, 0), -2 * std::pow(t, 4) + std::pow(t, 8), 4e-16);  // (1 - t^4)^2 - 1, a few ulps of 1
}

TEST(OftBlocks, AdjustPicksTheNearestDivisorTiesGoLow) {
  const std::vector<std::array<int, 3>> table = {{10, 4, 5},    {12, 5, 4},    {12, 7, 6},   {4096, 33, 32}, {4096, 31, 32},
                                                 {768, 40, 32}, {10, 11, 10},  {9, 4, 3},    {7, 3, 1}};
  for (const auto& [n, p, want] : table) EXPECT_EQ(adjust_oft_factor(n, p), want) << "n=" << n << " p=" << p;
}

TEST(OftBlocks, ResolvesRAndBlockSizeAsPeftUpdateLayer) {
  struct Row { int r, b, want_r, want_b; };
  for (const Row& t : std::vector<Row>{{3, 0, 2, 16}, {0, 3, 16, 2}, {0, 5, 8, 4}, {5, 0, 4, 8}, {0, 64, 1, 32}, {64, 0, 32, 1}}) {
    OftConfig c;
    c.r = t.r;
    c.oft_block_size = t.b;
    const OftBlocks blocks = resolve_oft_blocks(32, c);
    EXPECT_EQ(blocks.r, t.want_r) << "r=" << t.r << " b=" << t.b;
    EXPECT_EQ(blocks.block_size, t.want_b) << "r=" << t.r << " b=" << t.b;
  }
  OftConfig one;
  one.r = 64;
  one.oft_block_size = 0;
  EXPECT_EQ(resolve_oft_blocks(32, one).n_elements, 0);  // b = 1: no parameters, R = I
}

TEST(OftLinear, SpecCaseAForward) {
  const Matrix x = row({1, 0.5, -1, 2});
  const Matrix base = row({7, 3, 7});
  auto forward = [&](bool neumann, int n, Convention conv) { return case_a(config(2, 0, neumann, n), conv).forward(x); };
  for (Convention conv : {Convention::Math, Convention::Peft})
    EXPECT_TRUE(close(row({2.432597105864432, 1.4386900228484383, 8.004569687738005}), forward(false, 5, conv), 1e-15));
  EXPECT_TRUE(close(row({10.7052, 4.11275, 5.2966}), forward(true, 5, Convention::Peft), 1e-15));
  EXPECT_TRUE(close(row({10.7785, 4.139, 5.265}), forward(true, 3, Convention::Peft), 1e-15));
  EXPECT_TRUE(close(row({10.7785, 4.139, 5.265}), forward(true, 4, Convention::Peft), 1e-15));
  EXPECT_TRUE(close(row({11.3, 4.4, 5.6}), forward(true, 2, Convention::Peft), 1e-15));
  EXPECT_TRUE(close(base, forward(true, 1, Convention::Peft), 1e-15));  // n = 1 ignores the parameters
  const OftLinear layer = case_a(config(2, 0, true, 5), Convention::Peft);
  EXPECT_TRUE(close(row({0.8811, 0.68805, -0.1536, 2.2272}), layer.adapter("default").rotate(x), 1e-15));
  const OftLinear exact = case_a(config(2, 0, false, 5), Convention::Math);
  EXPECT_TRUE(close(rows({{0.9230769230769231, 0.3846153846153846}, {-0.38461538461538464, 0.923076923076923}}),
                    exact.adapter("default").block_rotations()[1], 1e-15));
}

TEST(OftLinear, SpecCaseBOneBlockOfFour) {
  DenseLinear base(rows({{1, 0, 0, 0}, {0, 1, 2, 3}}), std::nullopt);
  const Matrix v = row({0.01, 0.02, 0.03, 0.04, 0.05, 0.06});
  const Matrix x = row({1, 2, 3, 4});
  auto layer = [&](bool neumann, int n) {
    OftLinear l(base, Convention::Peft);
    l.add_adapter("default", config(0, 4, neumann, n), v);
    return l;
  };
  const Matrix r = layer(false, 5).delta_weight("default");
  EXPECT_TRUE(close(row({0.9972239835265588, -0.02447327751174551, -0.0423347268910661, -0.05615297201674552}), r.row(0), 1e-15));
  EXPECT_TRUE(close(row({0.0628916457728141, 0.10322855409149281, 0.11378052440834842, 0.9861249914577402}), r.row(3), 1e-15));
  EXPECT_TRUE(close(row({1.3898587558125024, 18.985875581250255}), layer(false, 5).forward(x), 1e-15));
  // The spec prints these to 7-10 significant digits.
  EXPECT_TRUE(close(row({0.9972121, 0.01533493, 0.03676874, 0.06290253}), layer(true, 5).delta_weight("default").row(0), 1e-7));
  EXPECT_TRUE(close(row({0.5966623, 20.33228876}), layer(true, 5).forward(x), 1e-8));
  EXPECT_TRUE(close(row({0.594916, 20.33377}), layer(true, 3).forward(x), 1e-7));
}

TEST(OftLinear, MergeMatchesForwardAndPeftUnmergeLosesFloat32Precision) {
  for (Convention conv : {Convention::Math, Convention::Peft}) {
    OftLinear layer = case_a(config(2, 0, true, 5), conv);
    const Matrix w0 = layer.base().weight();
    const Matrix x = row({1, 0.5, -1, 2});
    const Matrix y = layer.forward(x);
    layer.merge({"default"});
    EXPECT_TRUE(close(y, layer.forward(x), 1e-15));
    layer.unmerge();
    const double err = (layer.base().weight() - w0).cwiseAbs().maxCoeff();
    if (conv == Convention::Math) {
      EXPECT_LT(err, 1e-14);
    } else {
      EXPECT_GT(err, 1e-10);  // PEFT inverts in float32 even for float64 weights (spec Q10)
      EXPECT_LT(err, 1e-5);
    }
  }
}

TEST(OftLinear, TwoAdaptersPeftMergeReversesTheOrder) {
  SeededRandom rng(5);
  QORACLE_SEED_TRACE(5);
  const Matrix w = rng.normal(5, 8, 1.0), x = rng.normal(3, 8, 1.0);
  const Matrix va = rng.normal(2, 6, 0.2), vb = rng.normal(4, 1, 0.2);
  for (Convention conv : {Convention::Math, Convention::Peft}) {
    OftLinear layer(DenseLinear(w, std::nullopt), conv);
    layer.add_adapter("a", config(0, 4, false, 5), va);
    layer.add_adapter("b", config(0, 2, false, 5), vb);
    layer.set_active_adapters({"a", "b"});
    const Matrix ra = layer.delta_weight("a"), rb = layer.delta_weight("b");
    EXPECT_TRUE(close(Matrix(x * ra * rb * w.transpose()), layer.forward(x), 1e-14));  // unmerged: x R_a R_b
    layer.merge({"a", "b"});
    const Matrix merged = layer.forward(x);
    if (conv == Convention::Math) {
      EXPECT_TRUE(close(Matrix(x * ra * rb * w.transpose()), merged, 1e-14));
    } else {
      EXPECT_TRUE(close(Matrix(x * rb * ra * w.transpose()), merged, 1e-14));  // spec Q9
      EXPECT_FALSE(close(Matrix(x * ra * rb * w.transpose()), merged, 1e-3));
    }
  }
}

TEST(Coft, ProjectsOnlyBlocksOutsideTheBall) {
  // Spec case C: b = 2, two blocks, eps = 6e-5 -> eps' = eps / sqrt(2) = 4.2426e-5.
  const Matrix v = rows({{1e-5}, {1e-3}});
  const Matrix math = coft_project(v, 6e-5, Convention::Math);
  EXPECT_EQ(math(0, 0), 1e-5);
  EXPECT_NEAR(math(1, 0), 3e-5, 1e-19);  // ||S||_F = eps' exactly, ||v|| = eps' / sqrt(2)
  const Matrix peft = coft_project(v, 6e-5, Convention::Peft);
  EXPECT_EQ(peft(0, 0), 1e-5);
  // PEFT's radius is computed in float32: ||v|| = fl32(eps') / sqrt(2), visibly not 3e-5.
  EXPECT_NEAR(peft(1, 0), coft_radius(6e-5, 2, Convention::Peft) / std::sqrt(2.0), 1e-20);
  EXPECT_GT(std::abs(peft(1, 0) - 3e-5), 1e-13);
  // The spec measured 2.999999763359226e-05 with float32 parameters (float32 arithmetic
  // throughout); with float64 parameters the value lies within two float32 ulps (2^-39) of it.
  EXPECT_NEAR(peft(1, 0), 2.999999763359226e-05, 2 * std::ldexp(1.0, -39));
  EXPECT_TRUE(close(math, coft_project(math, 6e-5, Convention::Math), 1e-15));  // idempotent
}

TEST(Coft, PeftRadiusIsAReciprocalTimesEps) {
  // torch 2.15: `0.01 * 1 / torch.sqrt(torch.tensor(3))` and the same for (6e-5, 2) and (0.05, 3).
  // Dividing fl32(eps) by fl32(sqrt(rows)) instead lands one float32 ulp away on each pair.
  EXPECT_EQ(coft_radius(0.01, 3, Convention::Peft), 0.00577350240200758);
  EXPECT_EQ(coft_radius(6e-5, 2, Convention::Peft), 4.242640352458693e-05);
  EXPECT_EQ(coft_radius(0.05, 3, Convention::Peft), 0.028867512941360474);
  EXPECT_EQ(coft_radius(0.01, 3, Convention::Math), 0.01 / std::sqrt(3.0));
}

TEST(OftLinear, ZeroParametersAreTheIdentity) {
  SeededRandom rng(9);
  QORACLE_SEED_TRACE(9);
  const Matrix w = rng.normal(4, 12, 1.0), x = rng.normal(2, 12, 1.0);
  for (bool neumann : {false, true}) {
    OftLinear layer(DenseLinear(w, std::nullopt), Convention::Math);
    layer.add_adapter("default", config(0, 4, neumann, 5), Matrix::Zero(3, 6));
    // Bit for bit the base layer's own forward: the identity rotation changes no bit of x.
    EXPECT_EQ(layer.forward(x), DenseLinear(w, std::nullopt).forward(x));
  }
}
