#pragma once
// Seeded damage to a file's bytes, the ways a golden file gets hurt on its travels: flipped bits, a
// truncated copy, a run overwritten with random bytes, a run of 0xff (erased flash, a botched
// transfer); and one edit through HDF5 itself (a tool rewrote a value: HDF5 recomputes its own
// Fletcher32, so only the dataset's recorded SHA-256 can tell). The same seed gives the same damage
// on every platform (SplitMix64).
#include <cstdint>
#include <string>

namespace qoracle::damage {

enum class DamageKind { BitFlips, Truncation, OverwrittenRun, FfRun, RewrittenData };
inline constexpr DamageKind kDamageKinds[] = {DamageKind::BitFlips, DamageKind::Truncation, DamageKind::OverwrittenRun,
                                              DamageKind::FfRun, DamageKind::RewrittenData};
// "bit-flips", "truncation", "overwritten-run", "ff-run", "rewritten-data"
const char* damage_kind_name(DamageKind kind);

struct DamagedBytes {
  std::string bytes;
  std::string what;  // e.g. "3 bit flips at bytes 120, 5003, 77" (for the report and to replay by hand)
};

// `bytes` must not be empty. Bit flips: 1-8 random bits. Truncation: cut to [0, size). Runs: 1-512
// bytes at a random offset.
// The byte kinds only (RewrittenData is an edit of a file: rewrite_sealed_dataset).
DamagedBytes damage(const std::string& bytes, DamageKind kind, std::uint64_t seed);

// Through HDF5, in place: one bit of one dataset that records a SHA-256 (chosen by the seed among
// them) flipped and written back. Returns what changed ("bit 3 of byte 17 of cases/.../x"); throws
// where the file has no such dataset.
std::string rewrite_sealed_dataset(const std::string& path, std::uint64_t seed);

}  // namespace qoracle::damage
