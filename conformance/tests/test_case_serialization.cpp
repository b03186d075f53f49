// Fixture cases as bytes (fixtures/format/case_serialization.hpp): exact both ways, and bytes
// that are not a whole case are refused with an Error, never read past or trusted.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "fixture_edit.hpp"
#include "fixtures/format/case_serialization.hpp"
#include "reference/error.hpp"

using namespace qoracle;
using namespace qoracle::testing;

namespace {

// A case using every field, with the values a float comparison gets wrong: -0.0, NaN with a
// payload, infinities, subnormals; integer tensors; every attribute kind.
FixtureCase every_field_case() {
  FixtureCase c = make_reference_case(small_oft_spec());
  c.file = "dir/file.h5";
  c.merge_adapters = {"a", "b"};
  c.description = std::string("with a \0 byte and UTF-8 \xc3\xa9", 27);
  c.base.config.values["a_double"] = -0.0;
  c.base.config.values["a_string"] = std::string("x");
  c.base.config.values["an_int"] = std::int64_t{-5};
  Tensor codes;
  codes.shape = {2, 0};
  codes.stored_type = "int8";
  c.base.tensors["empty_codes"] = codes;
  c.x.values[0] = -0.0;
  c.x.values[1] = std::bit_cast<double>(0x7ff8000000000123ull);  // NaN with a payload
  c.x.values[2] = -std::numeric_limits<double>::infinity();
  c.x.values[3] = std::numeric_limits<double>::denorm_min();
  c.x.checksum_verified = true;
  c.expected.front().tolerance.max_mismatch_fraction = 0.25;
  c.training = true;  // the gradient inputs and a PEFT-None gradient (fixtures/SCHEMA.md, Gradients)
  c.grad_output = Tensor::from_matrix(Matrix::Constant(2, 3, -0.5), Dtype::BFloat16);
  c.dropout_noise["a"] = Tensor::from_matrix(Matrix::Constant(2, 4, 1.25), Dtype::Float32);
  c.expected.push_back({"grad/a/weight", Tensor::from_matrix(Matrix::Zero(1, 3), Dtype::Float32), {0, 1e-5, 0}, true});
  return c;
}

std::vector<std::uint64_t> bits(const std::vector<double>& v) {
  std::vector<std::uint64_t> b;
  for (double d : v) b.push_back(std::bit_cast<std::uint64_t>(d));
  return b;
}

}  // namespace

TEST(CaseSerialization, RoundTripIsExact) {
  const FixtureCase c = every_field_case();
  const FixtureCase back = deserialize_case(serialize_case(c));
  EXPECT_EQ(bits(back.x.values), bits(c.x.values));  // NaN payload and -0.0 included
  FixtureCase without_nan = c, back_without_nan = back;
  without_nan.x.values[1] = back_without_nan.x.values[1] = 0;
  EXPECT_TRUE(back_without_nan == without_nan);  // every other field
  EXPECT_TRUE(std::signbit(std::get<double>(back.base.config.values.at("a_double"))));
  EXPECT_EQ(back.description, c.description);
}

TEST(CaseSerialization, TensorRoundTripIsExact) {
  Tensor t = Tensor::from_vector(Vector::LinSpaced(5, -1, 1), Dtype::BFloat16);
  t.values[0] = -0.0;
  const Tensor back = deserialize_tensor(serialize_tensor(t));
  EXPECT_EQ(bits(back.values), bits(t.values));
  EXPECT_TRUE(back == t);
}

TEST(CaseSerialization, EveryTruncationIsRefused) {
  const std::string bytes = serialize_case(every_field_case());
  for (std::size_t n = 0; n < bytes.size(); n += 1 + n / 64) {
    EXPECT_THROW(deserialize_case(std::string_view(bytes).substr(0, n)), Error) << "first " << n << " bytes";
  }
  EXPECT_THROW(deserialize_case(bytes + "x"), Error);  // trailing bytes
}

TEST(CaseSerialization, ImplausibleCountsAreRefusedBeforeAllocating) {
  std::string bytes = serialize_tensor(Tensor::from_vector(Vector::Ones(3), Dtype::Float64));
  // The rank sits right after the tag (8-byte length + 16 bytes): claim 2^62 dimensions.
  bytes[8 + 16 + 7] = 0x40;
  try {
    deserialize_tensor(bytes);
    FAIL() << "accepted a rank of 2^62";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the bytes left"), std::string::npos) << e.what();
  }
}

TEST(CaseSerialization, ValuesThatDoNotFillTheShapeAreRefused) {
  Tensor t = Tensor::from_vector(Vector::Ones(3), Dtype::Float64);
  t.shape = {2, 2};
  EXPECT_THROW(deserialize_tensor(serialize_tensor(t)), Error);
}
