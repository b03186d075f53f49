#pragma once
// Seeded damage to a file's bytes, the four ways a golden file gets hurt on its travels: flipped
// bits, a truncated copy, a run overwritten with random bytes, a run of 0xff (erased flash, a
// botched transfer). The same seed gives the same damage on every platform (SplitMix64).
#include <cstdint>
#include <string>

namespace qoracle::damage {

enum class DamageKind { BitFlips, Truncation, OverwrittenRun, FfRun };
inline constexpr DamageKind kDamageKinds[] = {DamageKind::BitFlips, DamageKind::Truncation, DamageKind::OverwrittenRun,
                                              DamageKind::FfRun};
const char* damage_kind_name(DamageKind kind);  // "bit-flips", "truncation", "overwritten-run", "ff-run"

struct DamagedBytes {
  std::string bytes;
  std::string what;  // e.g. "3 bit flips at bytes 120, 5003, 77" (for the report and to replay by hand)
};

// `bytes` must not be empty. Bit flips: 1-8 random bits. Truncation: cut to [0, size). Runs: 1-512
// bytes at a random offset.
DamagedBytes damage(const std::string& bytes, DamageKind kind, std::uint64_t seed);

}  // namespace qoracle::damage
