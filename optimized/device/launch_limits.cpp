#include "optimized/device/launch_limits.hpp"

namespace qoracle::optimized {

std::vector<std::string> launch_violations(const LaunchConfig& c, const DeviceLimits& l) {
  std::vector<std::string> out;
  const std::string at = c.kernel + " on " + l.name + ": ";
  if (c.threads < 1 || c.threads > l.max_threads)
    out.push_back(at + "threads " + std::to_string(c.threads) + " outside 1.." + std::to_string(l.max_threads));
  if (c.grid_x < 1 || c.grid_x > l.max_grid_x || c.grid_y < 1 || c.grid_y > l.max_grid_yz || c.grid_z < 1 ||
      c.grid_z > l.max_grid_yz)
    out.push_back(at + "grid (" + std::to_string(c.grid_x) + ", " + std::to_string(c.grid_y) + ", " +
                  std::to_string(c.grid_z) + ") outside the limits");
  const int shared = c.static_shared + c.dynamic_shared;
  if (c.static_shared > l.default_shared)
    out.push_back(at + "static shared memory " + std::to_string(c.static_shared) + " B over " + std::to_string(l.default_shared));
  if (!c.opt_in && shared > l.default_shared)
    out.push_back(at + "static + dynamic shared memory " + std::to_string(shared) + " B over " +
                  std::to_string(l.default_shared) + " B without the opt-in attribute");
  if (c.opt_in && shared > l.opt_in_shared)
    out.push_back(at + "static + dynamic shared memory " + std::to_string(shared) + " B over the opt-in maximum " +
                  std::to_string(l.opt_in_shared) + " B");
  return out;
}

}  // namespace qoracle::optimized
