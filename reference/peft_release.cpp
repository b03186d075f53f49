#include "reference/peft_release.hpp"

#include <array>
#include <cstdio>

namespace qoracle {

std::string PeftRelease::text() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

std::optional<PeftRelease> parse_peft_release(const std::string& version) {
  PeftRelease r;
  int consumed = 0;
  if (std::sscanf(version.c_str(), "%d.%d.%d%n", &r.major, &r.minor, &r.patch, &consumed) != 3) return std::nullopt;
  if (r.major < 0 || r.minor < 0 || r.patch < 0) return std::nullopt;
  const char next = version.c_str()[consumed];
  if (next != '\0' && next != '.' && next != '+' && next != 'r' && next != 'a' && next != 'b') return std::nullopt;
  return r;
}

namespace {

struct Row {
  PeftRelease since;
  PeftReleaseRules rules;
};

// Oldest first; each row holds from its release until the next row's.
constexpr std::array<Row, 3> kRows{{
    {{0, 0, 0},
     {.dora_norms_on_merged_weight = true,
      .oft_unmerge_multiplies_by_rotation = true,
      .oft_neumann_series = PeftNeumannSeries::AllTwos}},
    // 0.18.0: OFT's unmerge inverts R (torch.linalg.inv in float32); the Neumann series' last power
    // gets weight 1 (0.17.1 and 0.18.1 read; 0.18.0 assumed).
    {{0, 18, 0},
     {.dora_norms_on_merged_weight = true,
      .oft_unmerge_multiplies_by_rotation = false,
      .oft_neumann_series = PeftNeumannSeries::TrailingOne}},
    // 0.21.0: DoRA's merge takes every norm on the unmerged weight (_unmerged_base_weight).
    {{0, 21, 0},
     {.dora_norms_on_merged_weight = false,
      .oft_unmerge_multiplies_by_rotation = false,
      .oft_neumann_series = PeftNeumannSeries::TrailingOne}},
}};

}  // namespace

PeftReleaseRules peft_release_rules(const PeftRelease& release) {
  PeftReleaseRules rules = kRows.front().rules;
  for (const Row& row : kRows)
    if (!(release < row.since)) rules = row.rules;
  return rules;
}

}  // namespace qoracle
