#include "tools/damage_sweep/damage.hpp"

#include <hdf5.h>

#include <algorithm>
#include <vector>

#include "reference/error.hpp"
#include "reference/seeded_random.hpp"

namespace qoracle::damage {

const char* damage_kind_name(DamageKind kind) {
  switch (kind) {
    case DamageKind::BitFlips: return "bit-flips";
    case DamageKind::Truncation: return "truncation";
    case DamageKind::OverwrittenRun: return "overwritten-run";
    case DamageKind::FfRun: return "ff-run";
    case DamageKind::RewrittenData: return "rewritten-data";
  }
  return "?";
}

DamagedBytes damage(const std::string& bytes, DamageKind kind, std::uint64_t seed) {
  if (bytes.empty()) throw Error("damage: expected a non-empty file");
  if (kind == DamageKind::RewrittenData) throw Error("damage: rewritten-data edits a file (rewrite_sealed_dataset)");
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
    case DamageKind::RewrittenData: break;
  }
  return d;
}

namespace {

// Closes an HDF5 handle on every path out.
struct Hid {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Hid() {
    if (id >= 0) close(id);
  }
};

herr_t collect_sealed(hid_t file, const char* name, const H5L_info_t*, void* out) {
  Hid obj{H5Oopen(file, name, H5P_DEFAULT), H5Oclose};
  if (obj.id < 0 || H5Iget_type(obj.id) != H5I_DATASET || H5Aexists(obj.id, "sha256") <= 0) return 0;
  Hid type{H5Dget_type(obj.id), H5Tclose}, space{H5Dget_space(obj.id), H5Sclose};
  if (H5Tget_class(type.id) == H5T_VLEN || H5Tis_variable_str(type.id) > 0) return 0;
  if (H5Sget_simple_extent_npoints(space.id) > 0) static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

}  // namespace

std::string rewrite_sealed_dataset(const std::string& path, std::uint64_t seed) {
  Hid file{H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose};
  if (file.id < 0) throw Error(path + ": rewritten-data: HDF5 cannot open it for writing");
  std::vector<std::string> sealed;
  H5Lvisit(file.id, H5_INDEX_NAME, H5_ITER_INC, collect_sealed, &sealed);
  if (sealed.empty()) throw Error(path + ": rewritten-data: no dataset records a SHA-256");
  SeededRandom rng(seed);
  const std::string& name = sealed[rng.next_u64() % sealed.size()];
  Hid ds{H5Dopen2(file.id, name.c_str(), H5P_DEFAULT), H5Dclose};
  Hid type{H5Dget_type(ds.id), H5Tclose}, space{H5Dget_space(ds.id), H5Sclose};
  std::vector<unsigned char> raw(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.id)) * H5Tget_size(type.id));
  if (H5Dread(ds.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) < 0)
    throw Error(path + ": rewritten-data: cannot read " + name);
  const std::size_t at = rng.next_u64() % raw.size();
  const int bit = static_cast<int>(rng.next_u64() % 8);
  raw[at] = static_cast<unsigned char>(raw[at] ^ (1u << bit));
  if (H5Dwrite(ds.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) < 0)
    throw Error(path + ": rewritten-data: cannot write " + name);
  return "bit " + std::to_string(bit) + " of byte " + std::to_string(at) + " of " + name + ", written through HDF5";
}

}  // namespace qoracle::damage
