// The optimized (CUDA) path: without a usable device every GPU test skips with the reason.
#include <gtest/gtest.h>

#include "optimized/device/device_probe.hpp"

TEST(OptimizedDevice, ProbeAnswersWithoutCrashing) {
  const auto status = qoracle::optimized::probe_device();
  EXPECT_FALSE(status.reason.empty());
}

TEST(OptimizedDevice, GpuSuite) {
  const auto status = qoracle::optimized::probe_device();
  if (!status.available) GTEST_SKIP() << "no GPU: " << status.reason;
  SUCCEED() << "device: " << status.reason;  // the kernels' conformance suites come with issue 9
}
