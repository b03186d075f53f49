// The reference's float64 backward (spec training.md; reference/layer_gradients.hpp), checked
// against central finite differences of the reference's own float64 forward, through the same
// path `qoracle check` takes (evaluate_case on grad_x and grad/<adapter>/<param>):
//  - every row of the case table and seeded random configurations (seeds printed), on every
//    base the committed fixtures hold (dense, HQQ, AQLM, EETQ);
//  - PEFT vs math where spec §8 says they agree, and where they differ (T1, T2, T4);
//  - properties: B = 0 => dA = 0; OFT at v = 0: exact dS = -2 Gbar, PEFT-Neumann +2 Gbar;
//    block_share sums the blocks; merged adapters take no gradient.
// Planted faults each of these caught (one at a time, then reverted) are listed at the end.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>
#include <set>

#include "committed_cases.hpp"
#include "conformance/case_runner.hpp"
#include "conformance/case_table.hpp"
#include "conformance/layers/evaluate_layer.hpp"
#include "reference/cayley.hpp"
#include "reference/peft_release.hpp"
#include "reference/seeded_random.hpp"
#include "reference/skew.hpp"
#include "test_support.hpp"

using namespace qoracle;
using namespace qoracle::testing;

namespace {

constexpr double kFiniteDifferenceRtol = 1e-7;  // issue 30: where the forward is smooth

// L = sum(G ⊙ y) with y the reference's float64 forward of the case (with its dropout noise).
double loss(const FixtureCase& c) {
  const FixtureLayer layer = fixture_layer(c, Dtype::Float64);
  const Matrix x = c.x.as_matrix("x");
  const Matrix y = std::visit([&](const auto& l) { return fixture_layers::forward_of(l, c, x); }, layer);
  return c.grad_output->as_matrix("grad_output").cwiseProduct(y).sum();
}

// The gradient outputs a case can have: grad_x and every adapter parameter.
std::vector<std::string> gradient_names(const FixtureCase& c) {
  std::vector<std::string> names{"grad_x"};
  for (const auto& a : c.adapters)
    for (const auto& p : fixture_layers::gradient_parameters(a))
      if (a.tensors.count(p)) names.push_back("grad/" + a.name + "/" + p);
  return names;
}

// The tensor a gradient output differentiates.
Tensor& differentiated(FixtureCase& c, const std::string& name) {
  if (name == "grad_x") return c.x;
  const std::string rest = name.substr(5);
  const auto slash = rest.find('/');
  for (auto& a : c.adapters)
    if (a.name == rest.substr(0, slash)) return a.tensors.at(rest.substr(slash + 1));
  throw Error(name + ": no such tensor");
}

// Outputs PEFT's autograd does not give as the derivative of its own forward (spec §8).
bool peft_deviates(const FixtureCase& c, const std::string& name) {
  if (c.convention != Convention::Peft || name == "grad_x") return false;
  for (const auto& a : c.adapters) {
    if (name.rfind("grad/" + a.name + "/", 0) != 0) continue;
    const bool dora = a.config.has("use_dora") && a.config.get_bool("use_dora");
    const bool coft = a.config.has("coft") && a.config.get_bool("coft");
    return (dora && (name.ends_with("/lora_A") || name.ends_with("/lora_B"))) || coft;  // T1, T4
  }
  return false;
}

// Central differences on up to `samples` entries per tensor, against the analytic gradient.
// Returns max|fd - analytic| / max|analytic| over the sampled entries (0 when both vanish).
::testing::AssertionResult matches_finite_differences(FixtureCase c, std::uint64_t seed, int samples = 12) {
  const auto names = gradient_names(c);
  std::map<std::string, Tensor> analytic;
  try {
    analytic = evaluate_case(c, names);
  } catch (const Error& e) {
    return ::testing::AssertionFailure() << "backward refused: " << e.what();
  }
  SeededRandom rng(seed);
  std::ostringstream report;
  bool ok = true;
  for (const auto& name : names) {
    if (peft_deviates(c, name)) continue;
    const Tensor& g = analytic.at(name);
    Tensor& t = differentiated(c, name);
    std::set<std::size_t> picks;
    for (int i = 0; i < samples && picks.size() < t.values.size(); ++i)
      picks.insert(static_cast<std::size_t>(rng.next_u64() % t.values.size()));
    double worst = 0, scale = 0;
    for (double v : g.values) scale = std::max(scale, std::abs(v));
    for (std::size_t i : picks) {
      const double keep = t.values[i], h = 1e-5 * std::max(1.0, std::abs(keep));
      t.values[i] = keep + h;
      const double up = loss(c);
      t.values[i] = keep - h;
      const double down = loss(c);
      t.values[i] = keep;
      worst = std::max(worst, std::abs((up - down) / (2 * h) - g.values[i]));
    }
    const double rel = scale > 0 ? worst / scale : worst;
    if (!(rel <= kFiniteDifferenceRtol) || !(scale > 0 || worst < 1e-9)) {
      ok = false;
      report << "\n  " << name << ": max|fd - analytic| / max|analytic| = " << rel << " (max|analytic| " << scale << ")";
    }
  }
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << c.name << " (sample seed " << seed << "):" << report.str();
}

// A case-table row with G, training mode and (for LoRA adapters, p = 0.3) recorded dropout noise.
FixtureCase with_gradient_inputs(FixtureCase c, std::uint64_t seed, bool noise) {
  SeededRandom rng(seed);
  const Matrix x = c.x.as_matrix("x");
  const auto out = c.expected.front().value.shape.back();  // forward's last dimension: out_features
  std::vector<std::int64_t> g_shape = c.x.shape;
  g_shape.back() = out;
  c.grad_output = Tensor::from_matrix(rng.normal(x.rows(), out, 1.0), Dtype::Float64, g_shape);
  c.training = true;
  if (noise) {
    const double p = 0.3;
    for (auto& a : c.adapters) {
      if (!a.tensors.count("lora_A")) continue;
      a.config.values["lora_dropout"] = p;
      Matrix nu(x.rows(), x.cols());
      for (Eigen::Index i = 0; i < nu.size(); ++i) nu(i) = rng.uniform() < p ? 0.0 : 1.0 / (1.0 - p);
      c.dropout_noise[a.name] = Tensor::from_matrix(nu, Dtype::Float64, c.x.shape);
    }
  }
  return c;
}

class GradientsOfTheCaseTable : public ::testing::TestWithParam<CaseSpec> {};

TEST_P(GradientsOfTheCaseTable, MatchFiniteDifferences) {
  const FixtureCase c = with_gradient_inputs(make_reference_case(GetParam()), GetParam().seed + 7000, false);
  EXPECT_TRUE(matches_finite_differences(c, GetParam().seed));
}

// OFT draws no dropout noise (T6): the LoRA rows only.
TEST_P(GradientsOfTheCaseTable, MatchFiniteDifferencesWithDropoutNoise) {
  if (GetParam().layer_kind != "lora/linear") return;
  const FixtureCase c = with_gradient_inputs(make_reference_case(GetParam()), GetParam().seed + 8000, true);
  EXPECT_TRUE(matches_finite_differences(c, GetParam().seed));
}

INSTANTIATE_TEST_SUITE_P(CaseTable, GradientsOfTheCaseTable, ::testing::ValuesIn(standard_cases()),
                         [](const auto& info) { return info.param.name(); });

// Seeded random configurations (dense base): LoRA / rsLoRA / lora_bias / DoRA / OFT exact,
// Neumann (1..7 terms), COFT, block_share; one or two adapters; both conventions; noise or not.
TEST(Gradients, SeededRandomConfigurationsMatchFiniteDifferences) {
  for (std::uint64_t seed = 9100; seed < 9140; ++seed) {
    SeededRandom rng(seed);
    CaseSpec spec;
    const bool oft = rng.uniform() < 0.5;
    spec.layer_kind = oft ? "oft/linear" : "lora/linear";
    spec.in_features = 4 * (1 + static_cast<int>(rng.uniform() * 3));
    spec.out_features = 3 + static_cast<int>(rng.uniform() * 6);
    spec.leading_dims = {1 + static_cast<std::int64_t>(rng.uniform() * 3), 2};
    spec.bias = rng.uniform() < 0.5;
    spec.convention = rng.uniform() < 0.5 ? Convention::Peft : Convention::Math;
    spec.seed = seed;
    const int n = 1 + (rng.uniform() < 0.4 ? 1 : 0);
    for (int k = 0; k < n; ++k) {
      AdapterSpec a;
      a.name = k == 0 ? "first" : "second";
      a.param_std = 0.05 + 0.2 * rng.uniform();
      if (oft) {
        OftConfig o;
        o.r = 0;
        o.oft_block_size = rng.uniform() < 0.5 ? 2 : 4;
        o.use_cayley_neumann = rng.uniform() < 0.6;
        o.num_cayley_neumann_terms = 1 + static_cast<int>(rng.uniform() * 7);
        o.coft = rng.uniform() < 0.25;
        o.eps = 0.05;
        o.block_share = rng.uniform() < 0.25;
        a.oft = o;
      } else {
        LoraConfig l;
        l.r = 1 + static_cast<int>(rng.uniform() * 3);
        l.lora_alpha = 1 + rng.uniform() * 8;
        l.use_rslora = rng.uniform() < 0.3;
        l.use_dora = rng.uniform() < 0.4;
        l.lora_bias = !l.use_dora && rng.uniform() < 0.3;
        if (l.lora_bias) spec.bias = true;  // the case's merge outputs need a base bias to merge into
        a.lora = l;
      }
      spec.adapters.push_back(a);
    }
    const FixtureCase c = with_gradient_inputs(make_reference_case(spec), seed + 1, !oft && rng.uniform() < 0.5);
    std::printf("seed %llu: %s%s\n", static_cast<unsigned long long>(seed), spec.name().c_str(),
                c.dropout_noise.empty() ? "" : " +dropout");
    EXPECT_TRUE(matches_finite_differences(c, seed)) << "seed " << seed;
  }
}

// Every committed fixture's base (HQQ, AQLM, EETQ, dense; any dtype, rebuilt in float64) with a
// seeded G: the backward through each library's dequantized weight, the first cases of each file.
TEST(Gradients, CommittedFixtureLayersMatchFiniteDifferences) {
  std::map<std::string, int> per_file;
  int checked = 0;
  for (const auto& ref : committed_cases()) {
    if (per_file[ref.file]++ >= 2) continue;
    FixtureCase c = read_case(ref.file, ref.name);
    if (c.adapters.empty() && c.layer_kind.find('/') != std::string::npos && c.layer_kind.rfind("lora", 0) != 0 &&
        c.layer_kind.rfind("oft", 0) != 0)
      continue;  // a base alone (quantizer cases)
    const auto fwd = std::find_if(c.expected.begin(), c.expected.end(), [](const auto& e) { return e.name == "forward"; });
    if (fwd == c.expected.end()) continue;
    c.dtype = Dtype::Float64;
    c.expected = {*fwd};
    c = with_gradient_inputs(c, 4242 + checked, false);
    const auto names = gradient_names(c);
    try {
      (void)evaluate_case(c, {"grad_x"});
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("T1"), std::string::npos) << ref.file << " :: " << ref.name << ": " << what;  // T10/T11 only
      continue;
    }
    EXPECT_TRUE(matches_finite_differences(c, 4242 + checked, 4)) << ref.file << " :: " << ref.name;
    ++checked;
  }
  std::printf("committed fixture layers checked: %d\n", checked);
  EXPECT_GT(checked, 10);
}

Matrix output(const FixtureCase& c, const std::string& name);
double relative_difference(const Matrix& a, const Matrix& b);

// The first committed case matching `pick`, with a seeded G in training mode.
std::optional<FixtureCase> committed_gradient_case(const std::string& file_part,
                                                   const std::function<bool(const FixtureCase&)>& pick) {
  for (const auto& ref : committed_cases()) {
    if (ref.file.find(file_part) == std::string::npos) continue;
    FixtureCase c = read_case(ref.file, ref.name);
    const auto fwd = std::find_if(c.expected.begin(), c.expected.end(), [](const auto& e) { return e.name == "forward"; });
    if (!pick(c) || fwd == c.expected.end() || c.adapters.empty()) continue;
    c.expected = {*fwd};
    return with_gradient_inputs(c, 4300, false);
  }
  return std::nullopt;
}

// T10: aqlm's CPU backward for 2x8/1x8 is wrong (and PEFT cannot run it): refused by name in the
// PEFT convention, the exact G W in the math one.
TEST(Gradients, AqlmCpuBackwardOfTwoFiftySixEntryCodebooksRefusedT10) {
  auto c = committed_gradient_case("aqlm", [](const FixtureCase& c) {
    return c.layer_kind == "lora/aqlm" && c.convention == Convention::Peft && c.base.config.get_int("nbits_per_codebook") == 8 &&
           c.base.config.get_int("out_group_size") == 1;
  });
  ASSERT_TRUE(c) << "no committed PEFT 2x8/1x8 AQLM case";
  try {
    (void)evaluate_case(*c, {"grad_x"});
    ADD_FAILURE() << "expected the T10 refusal";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("T10"), std::string::npos) << e.what();
  }
  c->convention = Convention::Math;
  c->dtype = Dtype::Float64;
  EXPECT_TRUE(matches_finite_differences(*c, 4301, 6));
}

// T13: EETQ's backward exists only in training; in eval (PEFT) dL/dx lacks G W and OFT gets none.
TEST(Gradients, EetqInEvalHasNoBaseBackwardT13) {
  for (const std::string kind : {"lora/eetq", "oft/eetq"}) {
    auto c = committed_gradient_case("eetq", [&](const FixtureCase& c) { return c.layer_kind == kind && c.convention == Convention::Peft; });
    if (!c) continue;
    c->dtype = Dtype::Float64;
    const Matrix train = output(*c, "grad_x");
    c->training = false;
    const Matrix eval = output(*c, "grad_x");
    const FixtureLayer layer = fixture_layer(*c, Dtype::Float64);
    const Matrix gw = c->grad_output->as_matrix("g") * std::visit([](const auto& l) { return l.base().weight(); }, layer);
    if (kind == "lora/eetq") {
      EXPECT_TRUE(close(train - gw, eval, 1e-12)) << kind;
    } else {
      EXPECT_EQ(eval.cwiseAbs().maxCoeff(), 0.0) << kind;
      const std::string w = "grad/" + c->adapters[0].name + "/weight";
      EXPECT_EQ(output(*c, w).cwiseAbs().maxCoeff(), 0.0);
    }
    c->convention = Convention::Math;  // the math convention has no such deviation: eval = train
    const Matrix math_eval = output(*c, "grad_x");
    c->training = true;
    EXPECT_EQ(math_eval, output(*c, "grad_x")) << kind;
    EXPECT_GT(math_eval.cwiseAbs().maxCoeff(), 0.0) << kind;
  }
}


// T7: in float16 the AQLM/EETQ LoRA multiplies G by s in 16 bits, so dB = G~^T x A^T with
// G~ = fp32(rnd16(G fl32(s))), not s G^T x A^T (1.9e-4 apart at s = 5/3, spec §6).
TEST(Gradients, AqlmLoraRoundsGTimesScalingInSixteenBitsT7) {
  auto c = committed_gradient_case("aqlm", [](const FixtureCase& c) {
    return c.layer_kind == "lora/aqlm" && c.dtype == Dtype::Float16 && c.base.config.get_int("nbits_per_codebook") != 8;
  });
  ASSERT_TRUE(c) << "no committed float16 LoRA-on-AQLM case";
  // s = 5/3 (alpha 5, r 3) is not a power of two, so the rounding shows.
  const AdapterRecord& a = c->adapters[0];
  c->adapters[0].config.values["lora_alpha"] = 5.0 * static_cast<double>(a.config.get_int("r")) / 3.0;
  for (double& v : c->grad_output->values) v = round_to(Dtype::Float16, v);
  const std::string b = "grad/" + a.name + "/lora_B";
  const Matrix half = output(*c, b);
  FixtureCase exact = *c;
  exact.dtype = Dtype::Float64;
  const Matrix math = output(exact, b);
  const Matrix g = c->grad_output->as_matrix("g"), x = c->x.as_matrix("x"), lora_a = a.tensors.at("lora_A").as_matrix("A");
  const double s = round_to(Dtype::Float32, 5.0 / 3.0);
  const Matrix g_tilde = round_to(Dtype::Float16, Matrix(g * s));
  EXPECT_TRUE(close(Matrix(g_tilde.transpose() * (x * lora_a.transpose())), half, 1e-13));
  EXPECT_GT(relative_difference(half, math), 1e-5);  // the deviation is real
}

// ---- PEFT vs math (spec §8) ----

FixtureCase table_case(const std::string& kind, std::vector<AdapterSpec> adapters, Convention convention,
                       std::uint64_t seed, bool noise = false) {
  CaseSpec spec{kind, 8, 6, {2, 3}, true, std::move(adapters), convention, seed};
  return with_gradient_inputs(make_reference_case(spec), seed + 1, noise);
}

AdapterSpec lora_spec(bool dora, double std = 0.1) {
  return AdapterSpec{"default", std::nullopt, LoraConfig{2, 4.0, false, false, dora}, std};
}

AdapterSpec oft_spec(bool neumann, int terms, bool coft = false, double eps = 0.05, bool share = false) {
  OftConfig o;
  o.r = 0;
  o.oft_block_size = 4;
  o.use_cayley_neumann = neumann;
  o.num_cayley_neumann_terms = terms;
  o.coft = coft;
  o.eps = eps;
  o.block_share = share;
  return AdapterSpec{"default", o, std::nullopt, 0.1};
}

Matrix output(const FixtureCase& c, const std::string& name) {
  return evaluate_case(c, {name}).at(name).as_matrix(name);
}

double relative_difference(const Matrix& a, const Matrix& b) { return (a - b).norm() / std::max(b.norm(), 1e-300); }

TEST(Gradients, LoraPeftEqualsMath) {
  for (bool noise : {false, true}) {
    const FixtureCase m = table_case("lora/linear", {lora_spec(false)}, Convention::Math, 31, noise);
    FixtureCase p = m;
    p.convention = Convention::Peft;
    p.producer = "peft-0.21.2";
    for (const auto& n : gradient_names(m)) EXPECT_EQ(output(p, n), output(m, n)) << n;
  }
}

TEST(Gradients, DoraPeftDetachesTheNormT1) {
  for (bool noise : {false, true}) {
    const FixtureCase m = table_case("lora/linear", {lora_spec(true)}, Convention::Math, 32, noise);
    FixtureCase p = m;
    p.convention = Convention::Peft;
    p.producer = "peft-0.21.2";
    // Agree: dx and dm (spec §3 table). Differ: dA, dB by the radial term.
    EXPECT_TRUE(close(output(m, "grad_x"), output(p, "grad_x"), 1e-14));
    EXPECT_TRUE(close(output(m, "grad/default/magnitude"), output(p, "grad/default/magnitude"), 1e-14));
    EXPECT_GT(relative_difference(output(p, "grad/default/lora_A"), output(m, "grad/default/lora_A")), 1e-3);
    EXPECT_GT(relative_difference(output(p, "grad/default/lora_B"), output(m, "grad/default/lora_B")), 1e-3);
  }
}

TEST(Gradients, OftExactCayleyPeftEqualsMath) {
  const FixtureCase m = table_case("oft/linear", {oft_spec(false, 5)}, Convention::Math, 33);
  FixtureCase p = m;
  p.convention = Convention::Peft;
  p.producer = "peft-0.21.2";
  EXPECT_TRUE(close(output(m, "grad_x"), output(p, "grad_x"), 1e-14));
  EXPECT_TRUE(close(output(m, "grad/default/weight"), output(p, "grad/default/weight"), 1e-14));
}

// T2: PEFT's Neumann polynomial approximates the transposed rotation, so at small v its gradient
// is close to minus the exact one at -v, and far from the exact one at v.
TEST(Gradients, OftNeumannPeftApproximatesTheTransposedRotationT2) {
  FixtureCase p = table_case("oft/linear", {oft_spec(true, 5)}, Convention::Peft, 34);
  p.producer = "peft-0.21.2";
  for (double& v : p.adapters[0].tensors.at("weight").values) v *= 0.1;
  FixtureCase exact_minus = p;
  exact_minus.adapters[0].config.values["use_cayley_neumann"] = std::int64_t{0};
  for (double& v : exact_minus.adapters[0].tensors.at("weight").values) v = -v;
  FixtureCase exact = p;
  exact.adapters[0].config.values["use_cayley_neumann"] = std::int64_t{0};
  const Matrix neumann = output(p, "grad/default/weight");
  EXPECT_LT(relative_difference(neumann, -output(exact_minus, "grad/default/weight")), 1e-3);
  EXPECT_GT(relative_difference(neumann, output(exact, "grad/default/weight")), 1.0);
  // The math convention's Neumann series approximates the exact rotation itself.
  FixtureCase math = p;
  math.convention = Convention::Math;
  math.producer = "qoracle-reference";
  EXPECT_LT(relative_difference(output(math, "grad/default/weight"), output(exact, "grad/default/weight")), 1e-3);
}

// T4: PEFT's COFT gradient is the unconstrained one at the projected value; math's applies J^T.
TEST(Gradients, CoftPeftIgnoresTheProjectionT4) {
  FixtureCase p = table_case("oft/linear", {oft_spec(false, 5, true, 1e-2)}, Convention::Peft, 35);
  p.producer = "peft-0.21.2";
  FixtureCase m = p;
  m.convention = Convention::Math;
  m.producer = "qoracle-reference";
  const Matrix projected = output(p, "weight_after_forward/default");
  ASSERT_GT((projected - p.adapters[0].tensors.at("weight").as_matrix("w")).norm(), 0) << "the case must project";
  FixtureCase unconstrained = p;
  unconstrained.adapters[0].config.values["coft"] = std::int64_t{0};
  unconstrained.adapters[0].tensors.at("weight") = Tensor::from_matrix(projected, Dtype::Float64);
  EXPECT_TRUE(close(output(unconstrained, "grad/default/weight"), output(p, "grad/default/weight"), 1e-14));
  EXPECT_GT(relative_difference(output(p, "grad/default/weight"), output(m, "grad/default/weight")), 1.0);
  EXPECT_TRUE(close(output(m, "grad_x"), output(p, "grad_x"), 1e-6));  // same rotation up to float32 eps'
}

// ---- properties ----

TEST(Gradients, ZeroLoraBGivesZeroLoraAGradient) {
  for (bool dora : {false, true})
    for (Convention conv : {Convention::Math, Convention::Peft}) {
      FixtureCase c = table_case("lora/linear", {lora_spec(dora)}, conv, 36, true);
      if (conv == Convention::Peft) c.producer = "peft-0.21.2";
      for (double& v : c.adapters[0].tensors.at("lora_B").values) v = 0;
      const Matrix ga = output(c, "grad/default/lora_A");
      EXPECT_EQ(ga.cwiseAbs().maxCoeff(), 0.0) << "dora " << dora;
      EXPECT_GT(output(c, "grad/default/lora_B").cwiseAbs().maxCoeff(), 0.0);
    }
}

// At v = 0: exact dS = -2 Gbar, PEFT-Neumann dS = +2 Gbar (so dv_k = ±2 (Gbar_pq - Gbar_qp)).
TEST(Gradients, OftAtZeroExactIsMinusTwoGbarNeumannPlusTwo) {
  SeededRandom rng(37);
  const Matrix s = Matrix::Zero(4, 4);
  const Matrix gbar = rng.normal(4, 4, 1.0);
  EXPECT_TRUE(close(-2 * gbar, cayley_exact_backward(s, gbar), 1e-15));
  for (int n = 2; n <= 7; ++n) {
    EXPECT_TRUE(close(2 * gbar, cayley_polynomial_backward(s, neumann_coefficients(n, Convention::Peft), gbar), 1e-15)) << n;
    EXPECT_TRUE(close(-2 * gbar, cayley_polynomial_backward(s, neumann_coefficients(n, Convention::Math), gbar), 1e-15)) << n;
  }
  // Through a layer: the packed gradient at v = 0 of the exact and Neumann paths are opposite.
  FixtureCase exact = table_case("oft/linear", {oft_spec(false, 5)}, Convention::Peft, 38);
  exact.producer = "peft-0.21.2";
  for (double& v : exact.adapters[0].tensors.at("weight").values) v = 0;
  FixtureCase neumann = exact;
  neumann.adapters[0].config.values["use_cayley_neumann"] = std::int64_t{1};
  EXPECT_TRUE(close(-output(exact, "grad/default/weight"), output(neumann, "grad/default/weight"), 1e-15));
}

// The PEFT Neumann polynomial of each release (forward; spec §4 table) and its n = 1 None.
TEST(Gradients, NeumannCoefficientsPerRelease) {
  using V = std::vector<double>;
  EXPECT_EQ(neumann_coefficients(1, Convention::Peft), V({1}));
  EXPECT_EQ(neumann_coefficients(2, Convention::Peft), V({1, 2}));
  EXPECT_EQ(neumann_coefficients(3, Convention::Peft), V({1, 2, 2, 1}));
  EXPECT_EQ(neumann_coefficients(4, Convention::Peft), V({1, 2, 2, 1}));
  EXPECT_EQ(neumann_coefficients(5, Convention::Peft), V({1, 2, 2, 2, 1}));
  EXPECT_EQ(neumann_coefficients(3, Convention::Peft, PeftNeumannSeries::AllTwos), V({1, 2, 2}));
  EXPECT_EQ(neumann_coefficients(5, Convention::Peft, PeftNeumannSeries::AllTwos), V({1, 2, 2, 2, 2}));
  EXPECT_EQ(neumann_coefficients(3, Convention::Math), V({1, -2, 2, -1}));
  EXPECT_EQ(peft_release_rules(*parse_peft_release("0.17.1")).oft_neumann_series, PeftNeumannSeries::AllTwos);
  EXPECT_EQ(peft_release_rules(*parse_peft_release("0.18.1")).oft_neumann_series, PeftNeumannSeries::TrailingOne);
  // A 0.17.1 case's forward uses its polynomial: I + 2S + 2S^2 for n = 3.
  FixtureCase c = table_case("oft/linear", {oft_spec(true, 3)}, Convention::Peft, 39);
  c.producer = "peft-0.17.1";
  const Matrix s = skew_from_params(c.adapters[0].tensors.at("weight").as_matrix("w").row(0).transpose(), 4);
  const Matrix want = Matrix::Identity(4, 4) + 2 * s + 2 * s * s;
  EXPECT_TRUE(close(want, output(c, "delta_weight/default").topLeftCorner(4, 4), 1e-15));
  EXPECT_TRUE(matches_finite_differences(c, 39));
  // n = 1: R = I, PEFT's weight.grad is None: zeros here.
  FixtureCase one = table_case("oft/linear", {oft_spec(true, 1)}, Convention::Peft, 40);
  one.producer = "peft-0.21.2";
  EXPECT_EQ(output(one, "grad/default/weight").cwiseAbs().maxCoeff(), 0.0);
}

// block_share: the shared row's gradient is the sum of what each block would get with its own
// copy of that row.
TEST(Gradients, BlockShareSumsTheBlocks) {
  for (bool neumann : {false, true}) {
    FixtureCase shared = table_case("oft/linear", {oft_spec(neumann, 5, false, 0.05, true)}, Convention::Math, 41);
    const Matrix row = shared.adapters[0].tensors.at("weight").as_matrix("w");
    FixtureCase separate = shared;
    separate.adapters[0].config.values["block_share"] = std::int64_t{0};
    separate.adapters[0].tensors.at("weight") = Tensor::from_matrix(row.replicate(2, 1), Dtype::Float64);
    const Matrix per_block = output(separate, "grad/default/weight");
    EXPECT_TRUE(close(per_block.colwise().sum(), output(shared, "grad/default/weight"), 1e-14));
    EXPECT_TRUE(close(output(separate, "grad_x"), output(shared, "grad_x"), 1e-14));
  }
}

// Merged adapters: PEFT's forward is the merged base alone, so no adapter gradient (None) and
// dx = G W_merged.
TEST(Gradients, MergedAdaptersTakeNoGradient) {
  const FixtureCase lc = table_case("lora/linear", {lora_spec(false)}, Convention::Math, 42);
  const Matrix x = lc.x.as_matrix("x"), g = lc.grad_output->as_matrix("g");
  auto lora = std::get<LoraLayer<DenseLinear>>(fixture_layer(lc, Dtype::Float64));
  lora.merge({"default"});
  const LayerGradients lg = lora.backward(x, g, {}, true);
  EXPECT_TRUE(lg.adapters.at("default").peft_grad_none);
  EXPECT_EQ(lg.adapters.at("default").lora_A->cwiseAbs().maxCoeff(), 0.0);
  EXPECT_TRUE(close(g * lora.base().weight(), lg.grad_x, 1e-15));

  const FixtureCase oc = table_case("oft/linear", {oft_spec(false, 5)}, Convention::Math, 43);
  auto oft = std::get<OftLayer<DenseLinear>>(fixture_layer(oc, Dtype::Float64));
  oft.merge({"default"});
  const LayerGradients og = oft.backward(x, oc.grad_output->as_matrix("g"), true);
  EXPECT_TRUE(og.adapters.at("default").peft_grad_none);
  EXPECT_EQ(og.adapters.at("default").weight->cwiseAbs().maxCoeff(), 0.0);
  EXPECT_TRUE(close(oc.grad_output->as_matrix("g") * oft.base().weight(), og.grad_x, 1e-15));
}

}  // namespace
