// Integrity of golden data (fixtures/SCHEMA.md, Integrity): every dataset carries the SHA-256 of
// its stored bytes and HDF5's Fletcher32, the metadata is HDF5 1.10's checksummed format, and a
// damaged byte is reported as damage, never as a FAIL of the layer.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "conformance/case_runner.hpp"
#include "fixture_edit.hpp"
#include "fixtures/format/file_bytes.hpp"
#include "fixtures/format/fixture_file.hpp"
#include "fixtures/format/hdf5_file.hpp"
#include "fixtures/format/seal.hpp"
#include "fixtures/format/sha256.hpp"
#include "reference/error.hpp"
#include "test_support.hpp"

using namespace qoracle;
using namespace qoracle::testing;

namespace {

void flip_bit(const std::string& path, std::uint64_t offset, int bit) {
  std::string b = file_bytes(path);
  ASSERT_LT(offset, b.size());
  b[offset] = static_cast<char>(static_cast<unsigned char>(b[offset]) ^ (1u << bit));
  std::ofstream(path, std::ios::binary | std::ios::trunc) << b;
}

// Where HDF5 stored the (single) chunk of a dataset, and where an object's header starts.
std::uint64_t chunk_address(const std::string& path, const std::string& dataset) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t ds = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  const hid_t space = H5Dget_space(ds);
  haddr_t addr = HADDR_UNDEF;
  hsize_t size = 0;
  unsigned mask = 0;
  std::vector<hsize_t> offset(8);
  H5Dget_chunk_info(ds, space, 0, offset.data(), &mask, &addr, &size);
  H5Sclose(space);
  H5Dclose(ds);
  H5Fclose(f);
  return addr;
}

std::uint64_t header_address(const std::string& path, const std::string& object) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  H5O_info_t info;
  H5Oget_info_by_name2(f, object.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT);
  H5Fclose(f);
  return info.addr;
}

std::string read_error(const std::string& path, const std::string& case_name) {
  try {
    read_case(path, case_name);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Sha256, Fips180Vectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  Sha256 pieces;  // fed in uneven pieces, across block boundaries
  const std::string text(200, 'q');
  for (std::size_t at = 0, n = 1; at < text.size(); at += n, n = n * 2 + 1) pieces.update(text.data() + at, std::min(n, text.size() - at));
  EXPECT_EQ(pieces.hex(), sha256_hex(text));
}

TEST(FixtureIntegrity, WrittenFilesAreSealedAndVerifiedOnRead) {
  const std::string path = write_small_fixture("sealed.h5");
  EXPECT_EQ(unsealed_reasons(path), std::vector<std::string>{});
  const FileRead read = read_fixture_file(path);
  EXPECT_TRUE(read.notes.empty());
  ASSERT_EQ(read.cases.size(), 1u);
  ASSERT_TRUE(read.cases[0].fixture) << read.cases[0].error;
  EXPECT_TRUE(read.cases[0].fixture->x.checksum_verified);
  for (const auto& e : read.cases[0].fixture->expected) EXPECT_TRUE(e.value.checksum_verified) << e.name;
}

TEST(FixtureIntegrity, FlippedDataBitIsDamageNotFail) {
  const std::string name = small_oft_spec().name();
  for (int bit : {0, 6}) {
    const std::string path = write_small_fixture("flipped_data.h5");
    flip_bit(path, chunk_address(path, "cases/" + name + "/expected/forward") + 3, bit);
    const std::string error = read_error(path, name);
    EXPECT_NE(error.find("flipped_data.h5: case '" + name + "': expected/forward is damaged (checksum mismatch"),
              std::string::npos) << error;
  }
}

TEST(FixtureIntegrity, RewrittenDataWithStaleSha256IsDamage) {
  // HDF5 recomputes Fletcher32 when data is written through it; the SHA-256 still holds the truth.
  const std::string name = small_oft_spec().name();
  const std::string path = write_small_fixture("stale_sha.h5");
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t ds = H5Dopen2(f, ("cases/" + name + "/inputs/x").c_str(), H5P_DEFAULT);
  std::vector<double> x(static_cast<std::size_t>(H5Sget_simple_extent_npoints(H5Dget_space(ds))));
  H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x.data());
  x[1] += 1.0;
  H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x.data());
  H5Dclose(ds);
  H5Fclose(f);
  const std::string error = read_error(path, name);
  EXPECT_NE(error.find("inputs/x is damaged (checksum mismatch: SHA-256"), std::string::npos) << error;
}

TEST(FixtureIntegrity, FlippedMetadataBitIsDamage) {
  const std::string name = small_oft_spec().name();
  const std::string path = write_small_fixture("flipped_header.h5");
  flip_bit(path, header_address(path, "cases/" + name + "/adapters/default") + 20, 2);
  const std::string error = read_error(path, name);
  EXPECT_NE(error.find("is damaged (checksum mismatch in HDF5's metadata)"), std::string::npos) << error;
}

TEST(FixtureIntegrity, DatasetWithoutChecksumInASealedFileIsRefused) {
  const std::string name = small_oft_spec().name();
  const std::string path = write_small_fixture("added_later.h5");
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(H5Adelete_by_name(f, ("cases/" + name + "/base/weight").c_str(), h5::kChecksumAttribute, H5P_DEFAULT), 0);
  H5Fclose(f);
  const std::string error = read_error(path, name);
  EXPECT_NE(error.find("dataset base/weight has no checksum although the file records one"), std::string::npos) << error;
}

// h5repack (hdf5-tools) writes the oldest format by default: the `checksums` attribute survives,
// the checksummed headers that protect every attribute do not, so the file is refused.
TEST(FixtureIntegrity, SealedFileRewrittenInTheOldFormatIsRefused) {
  const std::string name = small_oft_spec().name();
  const std::string path = write_small_fixture("before_repack.h5");
  const std::string repacked = (std::filesystem::path(path).parent_path() / "repacked.h5").string();
  std::filesystem::remove(repacked);
  ASSERT_EQ(std::system(("h5repack '" + path + "' '" + repacked + "'").c_str()), 0) << "h5repack (hdf5-tools) missing?";
  const std::string error = read_error(repacked, name);
  EXPECT_NE(error.find("repacked.h5: root attribute 'checksums' says the file is sealed, but its superblock is version 0"),
            std::string::npos) << error;
  EXPECT_EQ(read_error(path, name), "");
}

// A fixture as committed before checksums (old HDF5 format, variable-length strings).
TEST(FixtureIntegrity, OldFileReadsWithANoteAndSealsExactly) {
  const std::string old = source_path("conformance/tests/data/unsealed/lora_linear_before_checksums.h5");
  const FileRead before = read_fixture_file(old);
  ASSERT_EQ(before.notes.size(), 1u);
  EXPECT_NE(before.notes[0].find("written without checksums"), std::string::npos) << before.notes[0];
  EXPECT_FALSE(unsealed_reasons(old).empty());

  const std::string copy = temp_file("sealed_copy.h5");
  std::filesystem::copy_file(old, copy, std::filesystem::copy_options::overwrite_existing);
  const SealReport report = seal_file(copy);
  EXPECT_TRUE(report.changed);
  EXPECT_GT(report.datasets, 0);
  EXPECT_EQ(unsealed_reasons(copy), std::vector<std::string>{});
  const FileRead after = read_fixture_file(copy);
  EXPECT_TRUE(after.notes.empty());
  ASSERT_EQ(after.cases.size(), before.cases.size());
  for (std::size_t i = 0; i < after.cases.size(); ++i) {
    ASSERT_TRUE(after.cases[i].fixture) << after.cases[i].error;
    const FixtureCase &a = *after.cases[i].fixture, &b = *before.cases[i].fixture;
    // The paths differ (file, `where`) and so does checksum_verified: compare the values.
    EXPECT_EQ(a.x.values, b.x.values);
    for (std::size_t k = 0; k < a.expected.size(); ++k) EXPECT_EQ(a.expected[k].value.values, b.expected[k].value.values);
    EXPECT_EQ(a.base.config.values, b.base.config.values);
    EXPECT_EQ(a.producer_versions, b.producer_versions);
  }
  const std::string once = file_bytes(copy);
  EXPECT_FALSE(seal_file(copy).changed);  // idempotent, to the byte
  EXPECT_EQ(file_bytes(copy), once);
}

TEST(FixtureIntegrity, SealRefusesDamagedData) {
  const std::string name = small_oft_spec().name();
  const std::string path = write_small_fixture("damaged_then_sealed.h5");
  flip_bit(path, chunk_address(path, "cases/" + name + "/expected/forward") + 3, 1);
  const std::string before = file_bytes(path);
  EXPECT_THROW(seal_file(path), Error);
  EXPECT_EQ(file_bytes(path), before);  // left as it was
}
