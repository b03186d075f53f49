#pragma once
// Test-only edits of fixture files: a fresh reference case on disk, and raw HDF5 surgery to
// make the broken files the reader must refuse.
#include <hdf5.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "conformance/case_table.hpp"
#include "fixtures/format/fixture_case.hpp"

namespace qoracle::testing {

inline std::string temp_file(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / name).string();
}

inline CaseSpec small_oft_spec() {
  return standard_cases().front();  // oft/linear, exact Cayley, bias, batch 2 x 3
}

inline std::string write_small_fixture(const std::string& name) {
  const std::string path = temp_file(name);
  write_fixture_file(path, {make_reference_case(small_oft_spec())});
  return path;
}

// Deletes one link (dataset or group) inside a fixture file.
inline void delete_link(const std::string& path, const std::string& link) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  ASSERT_GE(H5Ldelete(f, link.c_str(), H5P_DEFAULT), 0) << link;
  H5Fclose(f);
}

// Replaces a dataset by a string dataset of the same name.
inline void replace_with_string(const std::string& path, const std::string& link) {
  delete_link(path, link);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, 4);
  const hid_t space = H5Screate(H5S_SCALAR);
  const hid_t ds = H5Dcreate2(f, link.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, "abcd");
  H5Dclose(ds);
  H5Sclose(space);
  H5Tclose(type);
  H5Fclose(f);
}

inline void truncate_file(const std::string& path, double keep_fraction) {
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, static_cast<std::uintmax_t>(static_cast<double>(size) * keep_fraction));
}

inline std::string write_bytes(const std::string& name, const std::string& bytes) {
  const std::string path = temp_file(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

}  // namespace qoracle::testing
