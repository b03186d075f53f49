#pragma once
// PEFT's numerics that changed between releases: one table, keyed by the first release of each
// behaviour (reports/peft-deviations.md names each rule). Rules that a fixture records itself
// (an adapter's dtype: PEFT 0.18's add_adapter left it in a 16-bit model's dtype) are read from
// the fixture, not from here.
#include <optional>
#include <string>

#include "reference/cayley.hpp"

namespace qoracle {

struct PeftRelease {
  int major = 0, minor = 0, patch = 0;
  std::string text() const;
  friend bool operator<(const PeftRelease& a, const PeftRelease& b) {
    if (a.major != b.major) return a.major < b.major;
    if (a.minor != b.minor) return a.minor < b.minor;
    return a.patch < b.patch;
  }
};

// "0.21.2", "0.21.2.dev0", "0.22.0rc1": major.minor.patch and anything after; nullopt otherwise.
std::optional<PeftRelease> parse_peft_release(const std::string& version);

struct PeftReleaseRules {
  // Several DoRA adapters merged: each takes its weight norm on the weight merged so far (D12),
  // instead of on the unmerged weight as the forward does.
  bool dora_norms_on_merged_weight = false;
  // OFT unmerge multiplies the merged weight by R itself (W' R, exact only for an orthogonal R)
  // instead of by R^-1 transposed (PEFT 0.17).
  bool oft_unmerge_multiplies_by_rotation = false;
  // OFT's Cayley-Neumann polynomial (training.md §4): 0.17 weights every power after I by 2;
  // 0.18 gives the last power weight 1 (and n = 3 == n = 4).
  PeftNeumannSeries oft_neumann_series = PeftNeumannSeries::TrailingOne;
};

// The rules of the newest table row at or before `release`.
PeftReleaseRules peft_release_rules(const PeftRelease& release);

// The table starts at 0.17.0: the first release with today's OFT and OFT on quantized layers.
constexpr PeftRelease kOldestPeftRelease{0, 17, 0};
// The newest release whose fixtures and live layers qoracle has checked (the last line of
// fixtures/export/peft-versions.txt). A newer one gets its rules, with a note saying so.
constexpr PeftRelease kNewestVerifiedPeftRelease{0, 21, 2};

}  // namespace qoracle
