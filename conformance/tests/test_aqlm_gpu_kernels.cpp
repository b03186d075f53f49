// aqlm's GPU forward paths as the reference emulates them (reference/aqlm_gpu_kernels), against
// vectors worked out by hand from the kernels' arithmetic (spec aqlm.md §2.4): each one is built
// so that the kernel's rounding and the exact result differ, and says which step decides it.
// No GPU has produced these numbers; when one is lent, fixtures from the real kernels replace
// the hand vectors as the final word (reports/aqlm.md).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "reference/aqlm_gpu_kernels.hpp"
#include "reference/error.hpp"
#include "reference/seeded_random.hpp"
#include "test_support.hpp"

using namespace qoracle;
using qoracle::testing::close;

namespace {

const double kHalfUlp16 = std::ldexp(1.0, -11);  // half of float16's step at 1
const double kHalfUlpBf = std::ldexp(1.0, -8);   // half of bfloat16's step at 1

struct Layout {
  AqlmConfig config;
  int out = 1, in = 64;
};

// Every output group uses vector `u[k]` of codebook k in every input group; that vector is
// `entry[k]` (og x ig values; the rest of the codebooks is zero). Scales 1, no bias unless given.
AqlmLinear uniform_layer(const Layout& l, const std::vector<int>& u, const std::vector<std::vector<double>>& entry,
                         Dtype dtype, AqlmKernel kernel, std::optional<Vector> bias = std::nullopt) {
  const AqlmConfig& c = l.config;
  const int entries = 1 << c.nbits_per_codebook, groups = l.in / c.in_group_size, out_groups = l.out / c.out_group_size;
  const int vector = c.out_group_size * c.in_group_size;
  std::vector<double> codebooks(static_cast<std::size_t>(c.num_codebooks) * entries * vector, 0.0);
  std::vector<int> codes;
  for (int o = 0; o < out_groups; ++o)
    for (int i = 0; i < groups; ++i)
      for (int k = 0; k < c.num_codebooks; ++k) codes.push_back(u[k]);
  for (int k = 0; k < c.num_codebooks; ++k)
    for (int e = 0; e < vector; ++e) codebooks[(static_cast<std::size_t>(k) * entries + u[k]) * vector + e] = entry[k][e];
  return AqlmLinear(c, l.out, l.in, codes, codebooks, Vector::Ones(out_groups), std::move(bias), dtype, kernel);
}

Matrix input(int in, std::initializer_list<std::pair<int, double>> nonzero) {
  Matrix x = Matrix::Zero(1, in);
  for (const auto& [col, v] : nonzero) x(0, col) = v;
  return x;
}

const AqlmConfig k1x16{8, 1, 1, 16}, k2x8{8, 1, 2, 8}, k1x8{8, 1, 1, 8};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

// Each FMA of the half2 chain rounds: 1 + 2^-11 is a tie that goes back to 1, twice, where the
// exact sum is 1 + 2^-10 (a float16 value).
TEST(AqlmGpuKernels, MatvecRoundsEveryFmaOfTheChain) {
  for (Dtype d : {Dtype::Float16, Dtype::BFloat16}) {
    const double h = d == Dtype::Float16 ? kHalfUlp16 : kHalfUlpBf;
    const Matrix x = input(64, {{0, 1.0}, {2, h}, {4, h}});  // the even lane of group 0
    const std::vector<std::vector<double>> ones{std::vector<double>(8, 1.0)};
    EXPECT_EQ(uniform_layer({k1x16}, {3}, ones, d, AqlmKernel::CudaMatvec).forward(x, d)(0, 0), 1.0) << dtype_name(d);
    // cuBLAS and Triton sum in float32: 1 + 2 h survives.
    EXPECT_EQ(uniform_layer({k1x16}, {3}, ones, d, AqlmKernel::CudaDequantGemm).forward(x, d)(0, 0), 1.0 + 2 * h);
    EXPECT_EQ(uniform_layer({k1x16}, {3}, ones, d, AqlmKernel::Triton).forward(x, d)(0, 0), 1.0 + 2 * h);
  }
}

// Groups add into the lane's float32 sum: two groups giving 2^-11 each (after group 0 gave 1)
// make 1 + 2^-10. In float16 each addition would have been a tie back to 1.
TEST(AqlmGpuKernels, MatvecAddsGroupsInFloat32) {
  const Matrix x = input(64, {{0, 1.0}, {8, kHalfUlp16}, {16, kHalfUlp16}});
  const std::vector<std::vector<double>> ones{std::vector<double>(8, 1.0)};
  EXPECT_EQ(uniform_layer({k1x16}, {3}, ones, Dtype::Float16, AqlmKernel::CudaMatvec).forward(x, Dtype::Float16)(0, 0),
            1.0 + 2 * kHalfUlp16);
}

// 2x8 on sm_80+: __hadd2(1, 2^-11) = 1 before the FMA, so x = 3 gives 3. On sm_75 (and in
// Triton) the codebooks stay apart: 3 + 3*2^-11 in float32, which float16 rounds to 3 + 2^-9.
TEST(AqlmGpuKernels, TwoByEightRoundsTheCodebookSumExceptOnTuring) {
  const std::vector<std::vector<double>> entries{{1, 0, 0, 0, 0, 0, 0, 0}, {kHalfUlp16, 0, 0, 0, 0, 0, 0, 0}};
  const Matrix x = input(64, {{0, 3.0}});
  const auto y = [&](AqlmKernel k) {
    return uniform_layer({k2x8}, {5, 7}, entries, Dtype::Float16, k).forward(x, Dtype::Float16)(0, 0);
  };
  EXPECT_EQ(y(AqlmKernel::CudaMatvec), 3.0);
  EXPECT_EQ(y(AqlmKernel::CudaDequantGemm), 3.0);  // the dequantized W is __hadd2-rounded too
  EXPECT_EQ(y(AqlmKernel::CudaMatvecTuring), 3.0 + std::ldexp(1.0, -9));
  EXPECT_EQ(y(AqlmKernel::Triton), 3.0 + std::ldexp(1.0, -9));
  // 1x8 has one codebook: no sum to round.
  EXPECT_EQ(uniform_layer({k1x8}, {9}, {entries[1]}, Dtype::Float16, AqlmKernel::CudaMatvec)
                .forward(x, Dtype::Float16)(0, 0),
            3 * kHalfUlp16);
}

// code1x16 with in_group_size 16 runs ceil(groups / 512) loop iterations where each covers 256
// groups, so of 8192 inputs (all ones, every weight 1) it adds the first 4096. With in_group_size
// 8, or 4096 inputs, the count is right. Read from aqlm's source; not yet seen on a GPU.
TEST(AqlmGpuKernels, Code1x16WithGroupsOf16VisitsOnlyPartOfTheInput) {
  const AqlmConfig g16{16, 1, 1, 16};
  const std::vector<std::vector<double>> ones16{std::vector<double>(16, 1.0)}, ones8{std::vector<double>(8, 1.0)};
  const Matrix x8192 = Matrix::Ones(1, 8192), x4096 = Matrix::Ones(1, 4096);
  const Dtype h = Dtype::Float16;
  EXPECT_EQ(uniform_layer({g16, 1, 8192}, {0}, ones16, h, AqlmKernel::CudaMatvec).forward(x8192, h)(0, 0), 4096.0);
  EXPECT_EQ(uniform_layer({g16, 1, 4096}, {0}, ones16, h, AqlmKernel::CudaMatvec).forward(x4096, h)(0, 0), 4096.0);
  EXPECT_EQ(uniform_layer({k1x16, 1, 8192}, {0}, ones8, h, AqlmKernel::CudaMatvec).forward(x8192, h)(0, 0), 8192.0);
  EXPECT_EQ(aqlm_code1x16_covered_inputs(8192, 16), 4096);
  EXPECT_EQ(aqlm_code1x16_covered_inputs(11008, 16), 8192);  // Llama-2-7B's down_proj
  EXPECT_EQ(aqlm_code1x16_covered_inputs(11008, 8), 11008);
  // The dequantizing kernel leaves the other columns of W uninitialized: refused, not emulated.
  const std::string e = error_of([&] { uniform_layer({g16, 1, 8192}, {0}, ones16, h, AqlmKernel::CudaDequantGemm); });
  EXPECT_NE(e.find("first 4096 of 8192"), std::string::npos) << e;
}

// The warp's float32 sum is rounded to float16 before the host's scale and bias: 1 + 2^-11 (a
// tie) becomes 1, times 3 is 3, minus 1 is 2. Exactly: (1 + 2^-11) * 3 - 1 = 2 + 3*2^-11, which
// float16 rounds to 2 + 2^-9.
TEST(AqlmGpuKernels, ScaleAndBiasComeAfterTheOutputRounding) {
  const std::vector<std::vector<double>> ones{std::vector<double>(8, 1.0)};
  const Matrix x = input(64, {{0, 1.0}, {8, kHalfUlp16}});
  AqlmLinear l = uniform_layer({k1x16}, {3}, ones, Dtype::Float16, AqlmKernel::CudaMatvec, Vector::Constant(1, -1.0));
  const AqlmLinear scaled(l.config(), 1, 64, l.codes(), l.codebooks(), Vector::Constant(1, 3.0), Vector::Constant(1, -1.0),
                          Dtype::Float16, AqlmKernel::CudaMatvec);
  EXPECT_EQ(scaled.forward(x, Dtype::Float16)(0, 0), 2.0);
  const AqlmLinear exact(l.config(), 1, 64, l.codes(), l.codebooks(), Vector::Constant(1, 3.0), Vector::Constant(1, -1.0),
                         Dtype::Float16, AqlmKernel::Exact);
  EXPECT_EQ(round_to(Dtype::Float16, exact.forward(x)(0, 0)), 2.0 + std::ldexp(1.0, -9));
}

// Mis-indexing (wrong lane, group or codebook) would be far off; the rounding is a few float16
// steps at most. Sizes give two loop iterations (more than 32 chunks of 8 groups).
TEST(AqlmGpuKernels, EveryKernelStaysNearTheExactForwardOnRandomLayers) {
  const std::uint64_t seed = 2026;
  SeededRandom rng(seed);
  const auto uniform = [&rng](double lo, double hi) { return lo + (hi - lo) * rng.uniform(); };
  for (const AqlmConfig& c : {k1x16, k2x8, k1x8}) {
    const int out = 5, in = 64 * 40, entries = 1 << c.nbits_per_codebook;
    std::vector<double> codebooks(static_cast<std::size_t>(c.num_codebooks) * entries * 8);
    for (double& v : codebooks) v = round_to(Dtype::Float16, uniform(-1, 1));
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::vector<int> codes(static_cast<std::size_t>(out) * (in / 8) * c.num_codebooks);
    for (int& u : codes) u = static_cast<int>(rng.next_u64() % static_cast<std::uint64_t>(entries));
    Vector scales(out), bias(out);
    for (int o = 0; o < out; ++o) scales(o) = round_to(Dtype::Float16, uniform(0.01, 0.02)), bias(o) = round_to(Dtype::Float16, uniform(-1, 1));
    Matrix x(3, in);
    for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = round_to(Dtype::Float16, uniform(-1, 1));
    const AqlmLinear exact(c, out, in, codes, codebooks, scales, bias, Dtype::Float16, AqlmKernel::Exact);
    const Matrix want = exact.forward(x);
    for (AqlmKernel k : {AqlmKernel::CudaMatvec, AqlmKernel::CudaMatvecTuring, AqlmKernel::CudaDequantGemm, AqlmKernel::Triton}) {
      const AqlmLinear l(c, out, in, codes, codebooks, scales, bias, Dtype::Float16, k);
      EXPECT_TRUE(close(want, l.forward(x, Dtype::Float16), 1e-2)) << c.num_codebooks << "x" << c.nbits_per_codebook << " " << aqlm_kernel_name(k);
    }
  }
}

TEST(AqlmGpuKernels, TheLibrarysKernelChoice) {
  EXPECT_EQ(aqlm_cuda_kernel(k1x16, 1, 9, 0), AqlmKernel::CudaMatvec);
  EXPECT_EQ(aqlm_cuda_kernel(k1x16, 6, 8, 0), AqlmKernel::CudaMatvec);
  EXPECT_EQ(aqlm_cuda_kernel(k1x16, 7, 9, 0), AqlmKernel::CudaDequantGemm);
  EXPECT_EQ(aqlm_cuda_kernel(k2x8, 1, 7, 5), AqlmKernel::CudaMatvecTuring);
  EXPECT_EQ(aqlm_cuda_kernel(AqlmConfig{32, 1, 8, 8}, 1, 9, 0), AqlmKernel::Triton);  // 8x8, in groups of 32
  EXPECT_EQ(aqlm_cuda_kernel(AqlmConfig{32, 1, 8, 8}, 7, 9, 0), AqlmKernel::DequantizeGemm);
  EXPECT_EQ(aqlm_cuda_kernel(AqlmConfig{8, 2, 1, 16}, 1, 9, 0), AqlmKernel::DequantizeGemm);  // out groups
}

TEST(AqlmGpuKernels, RefusalsNameTheFieldAndTheExpectedValue) {
  const std::vector<std::vector<double>> ones{std::vector<double>(8, 1.0)};
  const Matrix x = Matrix::Zero(1, 64);
  const auto has = [](const std::string& e, const char* want) { return e.find(want) != std::string::npos; };
  EXPECT_TRUE(has(error_of([&] { uniform_layer({k1x16}, {0}, ones, Dtype::Float16, AqlmKernel::CudaMatvec).forward(x, Dtype::Float32); }),
                  "dtype: the AQLM CUDA kernels support float16 and bfloat16 activations only"));
  EXPECT_TRUE(has(error_of([&] { uniform_layer({k1x16}, {0}, ones, Dtype::BFloat16, AqlmKernel::CudaMatvecTuring).forward(x, Dtype::BFloat16); }),
                  "compute capability 8.0"));
  EXPECT_TRUE(has(error_of([&] { uniform_layer({k1x16}, {0}, ones, Dtype::Float16, AqlmKernel::CudaMatvec).forward(x, Dtype::BFloat16); }),
                  "layer must store bfloat16, but it stores float16"));
  EXPECT_TRUE(has(error_of([&] { uniform_layer({k1x16}, {0}, ones, Dtype::Float32, AqlmKernel::CudaMatvec); }),
                  "needs a float16 or bfloat16 layer"));
  EXPECT_TRUE(has(error_of([&] { uniform_layer({k1x16, 1, 96}, {0}, ones, Dtype::Float16, AqlmKernel::CudaMatvec); }),
                  "in_features: cuda_matvec reads 8 codes per 16-byte load, so in_features must be a multiple of 64"));
  EXPECT_TRUE(has(error_of([&] { uniform_layer({AqlmConfig{8, 2, 1, 8}, 2}, {0}, {std::vector<double>(16, 1.0)}, Dtype::Float16, AqlmKernel::CudaDequantGemm); }),
                  "config: cuda_dequant_gemm runs 1x16"));
  EXPECT_TRUE(has(error_of([&] { uniform_layer({AqlmConfig{8, 2, 1, 8}, 2}, {0}, {std::vector<double>(16, 1.0)}, Dtype::Float16, AqlmKernel::Triton); }),
                  "out_group_size: triton_gemv"));
  EXPECT_TRUE(has(error_of([&] { uniform_layer({AqlmConfig{8, 1, 3, 8}}, {0, 0, 0}, {ones[0], ones[0], ones[0]}, Dtype::Float16, AqlmKernel::Triton); }),
                  "power-of-two num_codebooks"));
  EXPECT_TRUE(has(error_of([] { parse_aqlm_kernel("cuda"); }), "cuda_matvec_sm75"));
}
