// Every launch configuration the project can make fits the device limits of sm_80 and sm_90,
// checked on the host (CI has no GPU): the batched Cayley for b = 2..256 with and without
// Neumann, and every forward launch (prepass, tensor-core or view GEMV, the GEMM path's
// dequantization) of every benchmarked shape and every committed fixture's layer, at every token
// count the GEMV takes and past it. The planners are the ones the launchers call. A
// configuration that only fits with the opt-in attribute must say so (the launcher sets it).
#include <gtest/gtest.h>

#include <numeric>

#include "bench/layer_cases.hpp"
#include "committed_cases.hpp"
#include "conformance/case_runner.hpp"
#include "optimized/device/launch_limits.hpp"
#include "optimized/forward/launch_plans.hpp"
#include "optimized/forward/tc_gemv.hpp"
#include "optimized/layer/fused_layer.hpp"
#include "optimized/layer/layer_checks.hpp"
#include "optimized/rotation/batched_cayley.hpp"
#include "reference/error.hpp"
#include "test_support.hpp"

namespace qoracle {
namespace {

using namespace optimized;
using bench::LayerShape;

struct Device {
  DeviceLimits limits;
  int sms;
};
constexpr Device kDevices[] = {{kSm80, 108}, {kSm90, 132}};

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& e : v) s += e + "\n";
  return s;
}

TEST(LaunchLimits, BatchedCayleyEveryBlockSize) {
  for (const Device& d : kDevices)
    for (int b = 2; b <= 256; ++b)
      for (bool neumann : {false, true}) {
        const CayleyBatch batch{11008 / b > 0 ? 11008 / b : 1, b, neumann, 5, 0.0f, false};
        const std::size_t n_el = static_cast<std::size_t>(b) * (b - 1) / 2;
        if (b > 128) {  // refused before any launch
          EXPECT_THROW(check_cayley_batch(batch, std::vector<float>(batch.rows * n_el)), Error) << b;
          continue;
        }
        const CayleyLaunch plan = plan_cayley_launch(batch, d.limits.opt_in_shared);
        const LaunchConfig config{"cayley_kernel", batch.rows, 1, 1, kCayleyThreads, kCayleyStaticShared, plan.dynamic_shared,
                                  plan.opt_in};
        EXPECT_EQ(launch_violations(config, d.limits), std::vector<std::string>{})
            << "b " << b << (neumann ? " neumann" : " exact");
      }
}

std::vector<RowsKind> every_kind() {
  return {RowsKind::None, RowsKind::Dense, RowsKind::Int8, RowsKind::Hqq8, RowsKind::Hqq4, RowsKind::Hqq2,
          RowsKind::Hqq1, RowsKind::Aqlm1x16, RowsKind::Aqlm2x16, RowsKind::Aqlm1x8, RowsKind::Aqlm2x8};
}

void expect_fits(const ForwardShape& s, const std::string& what) {
  for (const Device& d : kDevices)
    for (const LaunchConfig& c : forward_launches(s, d.sms))
      EXPECT_EQ(launch_violations(c, d.limits), std::vector<std::string>{})
          << what << " " << rows_kind_name(s.kind) << " t" << s.tokens << ": " << joined(launch_violations(c, d.limits));
}

TEST(LaunchLimits, ForwardEveryBenchmarkedShape) {
  const std::vector<LayerShape> shapes = {LayerShape(256), LayerShape(1024), LayerShape(4096), LayerShape(11008, 4096),
                                          LayerShape(4096, 11008)};
  for (const LayerShape& shape : shapes)
    for (RowsKind kind : every_kind())
      for (int tokens : {1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 128, 512, 2048, 4096})
        for (const auto& [unit, rank] : {std::pair{1, 0}, std::pair{16, 0}, std::pair{32, 0}, std::pair{64, 0}, std::pair{1, 16},
                                         std::pair{256, 0}, std::pair{1, 64}})
          for (bool sixteen_bit : {true, false})
            expect_fits({kind, shape.out, shape.in, tokens, unit, unit > 1 ? (unit == 256 ? 2 : 1) : 0, sixteen_bit, rank},
                        shape.name());
}

TEST(LaunchLimits, ForwardEveryCommittedFixture) {
  int checked = 0;
  for (const testing::CaseRef& ref : testing::committed_cases()) {
    const FixtureCase c = read_case(ref.file, ref.name);
    HostLayer l;
    try {
      l = std::visit([](const auto& layer) { return host_layer(layer); }, fixture_layer(c, c.dtype));
    } catch (const Error&) {
      continue;  // not a layer case (a quantizer or kernel fixture)
    }
    const RowsKind kind = repack_rows(l).kind;
    for (int tokens : {1, static_cast<int>(c.x.shape.empty() ? 1 : c.x.shape[0]), 16, 17, 64})
      expect_fits({kind, l.out_features, l.in_features, tokens, rotation_unit(l), static_cast<int>(l.oft.size()),
                   l.activations != Activations::Float32, l.rank},
                  ref.name);
    ++checked;
  }
  EXPECT_GT(checked, 100);
}

// The checks fail where a configuration does not fit: 48 KB + 1 byte without opting in.
TEST(LaunchLimits, TheCheckCanFail) {
  EXPECT_EQ(launch_violations({"k", 1, 1, 1, 256, 1024, 48 * 1024, false}, kSm90).size(), 1u);
  EXPECT_TRUE(launch_violations({"k", 1, 1, 1, 256, 1024, 48 * 1024, true}, kSm90).empty());
  EXPECT_EQ(launch_violations({"k", 1, 1, 1, 256, 1024, 200 * 1024, true}, kSm80).size(), 1u);
  EXPECT_EQ(launch_violations({"k", 1, 70000, 1, 2048, 0, 0, false}, kSm90).size(), 2u);
}

}  // namespace
}  // namespace qoracle
