#pragma once
// Launch configurations as plain data, and the limits a device puts on them, so that CI (no GPU)
// can check every launch the project can make: the planners the launchers use (plan_gemv,
// plan_cayley_launch, ...) are host code, and conformance/tests/test_launch_limits.cpp runs them
// over every benchmarked and fixture case against sm_80's and sm_90's limits.
#include <string>
#include <vector>

namespace qoracle::optimized {

struct DeviceLimits {
  const char* name;
  int max_threads = 1024;
  int default_shared = 48 * 1024;  // static + dynamic without the opt-in attribute
  int opt_in_shared = 0;           // static + dynamic with it (cudaDevAttrMaxSharedMemoryPerBlockOptin)
  long long max_grid_x = 2147483647;
  long long max_grid_yz = 65535;
};
inline constexpr DeviceLimits kSm80{"sm_80", 1024, 48 * 1024, 166912};
inline constexpr DeviceLimits kSm90{"sm_90", 1024, 48 * 1024, 232448};

struct LaunchConfig {
  std::string kernel;
  long long grid_x = 1, grid_y = 1, grid_z = 1;
  int threads = 0;
  int static_shared = 0, dynamic_shared = 0;
  bool opt_in = false;  // the launcher sets cudaFuncAttributeMaxDynamicSharedMemorySize first
};

// What breaks `config` on `limits` (empty: it launches).
std::vector<std::string> launch_violations(const LaunchConfig& config, const DeviceLimits& limits);

}  // namespace qoracle::optimized
