#include "tools/damage_sweep/damage.hpp"

#include <algorithm>

#include "reference/error.hpp"
#include "reference/seeded_random.hpp"

namespace qoracle::damage {

const char* damage_kind_name(DamageKind kind) {
  switch (kind) {
    case DamageKind::BitFlips: return "bit-flips";
    case DamageKind::Truncation: return "truncation";
    case DamageKind::OverwrittenRun: return "overwritten-run";
    case DamageKind::FfRun: return "ff-run";
  }
  return "?";
}

DamagedBytes damage(const std::string& bytes, DamageKind kind, std::uint64_t seed) {
  if (bytes.empty()) throw Error("damage: expected a non-empty file");
  SeededRandom rng(seed);
  const std::uint64_t size = bytes.size();
  const auto below = [&](std::uint64_t n) { return rng.next_u64() % n; };
  DamagedBytes d{bytes, ""};
  switch (kind) {
    case DamageKind::BitFlips: {
      const std::uint64_t flips = 1 + below(8);
      d.what = std::to_string(flips) + " bit flip(s) at byte.bit";
      for (std::uint64_t i = 0; i < flips; ++i) {
        const std::uint64_t at = below(size);
        const int bit = static_cast<int>(below(8));
        d.bytes[at] = static_cast<char>(static_cast<unsigned char>(d.bytes[at]) ^ (1u << bit));
        d.what += (i ? ", " : " ") + std::to_string(at) + "." + std::to_string(bit);
      }
      break;
    }
    case DamageKind::Truncation: {
      const std::uint64_t keep = below(size);
      d.bytes.resize(keep);
      d.what = "truncated to " + std::to_string(keep) + " of " + std::to_string(size) + " bytes";
      break;
    }
    case DamageKind::OverwrittenRun:
    case DamageKind::FfRun: {
      const std::uint64_t length = std::min<std::uint64_t>(1 + below(512), size);
      const std::uint64_t at = below(size - length + 1);
      for (std::uint64_t i = at; i < at + length; ++i)
        d.bytes[i] = kind == DamageKind::FfRun ? '\xff' : static_cast<char>(rng.next_u64() & 0xff);
      d.what = std::to_string(length) + (kind == DamageKind::FfRun ? " bytes of 0xff" : " random bytes") + " at " +
               std::to_string(at);
      break;
    }
  }
  return d;
}

}  // namespace qoracle::damage
