// Rounding to the deployment dtypes, against values worked out by hand from IEEE 754.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "reference/dtype.hpp"

using namespace qoracle;

TEST(Dtype, HalfRoundsToNearestEven) {
  EXPECT_EQ(float_to_half_bits(1.0f), 0x3C00);
  EXPECT_EQ(float_to_half_bits(1.0f / 3.0f), 0x3555);               // 0.333251953125
  EXPECT_EQ(float_to_half_bits(65504.0f), 0x7BFF);                  // largest finite half
  EXPECT_EQ(float_to_half_bits(65519.0f), 0x7BFF);                  // below the midpoint
  EXPECT_EQ(float_to_half_bits(65520.0f), 0x7C00);                  // the midpoint rounds to even = inf
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -24)), 0x0001);     // smallest subnormal
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -25)), 0x0000);     // half of it: ties to even (0)
  EXPECT_EQ(float_to_half_bits(std::ldexp(3.0f, -25)), 0x0002);     // 1.5 steps: ties to even (2)
  EXPECT_EQ(float_to_half_bits(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie between 1 and 1+2^-10 -> 1
  EXPECT_EQ(float_to_half_bits(1.0f + std::ldexp(3.0f, -11)), 0x3C02);  // tie -> even mantissa 2
  EXPECT_EQ(float_to_half_bits(-2.0f), 0xC000);
  EXPECT_EQ(float_to_half_bits(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_TRUE(std::isnan(half_bits_to_float(float_to_half_bits(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(Dtype, HalfDecodesEveryPatternExactly) {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    const float f = half_bits_to_float(bits);
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_half_bits(f), bits) << "pattern " << h;
  }
}

TEST(Dtype, BFloat16RoundsToNearestEven) {
  EXPECT_EQ(float_to_bfloat16_bits(1.0f), 0x3F80);
  EXPECT_EQ(float_to_bfloat16_bits(1.0f / 3.0f), 0x3EAB);
  EXPECT_EQ(float_to_bfloat16_bits(1.0f + std::ldexp(1.0f, -8)), 0x3F80);  // tie -> even
  EXPECT_EQ(float_to_bfloat16_bits(1.0f + std::ldexp(3.0f, -8)), 0x3F82);  // tie -> even
  EXPECT_EQ(bfloat16_bits_to_float(0x4049), 3.140625f);
}

TEST(Dtype, DoubleGoesThroughFloatFirstAsTorchDoes) {
  // 1 + 2^-11 + 2^-40 rounds to 1 + 2^-11 in float32 (a tie in half), then to 1 in half. A
  // direct double -> half rounding would give 1 + 2^-10 instead.
  const double v = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  EXPECT_EQ(round_to(Dtype::Float16, v), 1.0);
  EXPECT_EQ(round_to(Dtype::Float32, 0.1), static_cast<double>(0.1f));
  EXPECT_EQ(round_to(Dtype::Float64, 0.1), 0.1);
}

TEST(Dtype, RoundOnceToRoundsTheExactValueOnce) {
  // The same value as above, rounded once as a GPU instruction does: not a tie, so up.
  const double v = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  EXPECT_EQ(round_once_to(Dtype::Float16, v), 1.0 + std::ldexp(1.0, -10));
  EXPECT_EQ(round_once_to(Dtype::Float16, 1.0 + std::ldexp(1.0, -11)), 1.0);                     // tie -> even
  EXPECT_EQ(round_once_to(Dtype::Float16, 1.0 + std::ldexp(3.0, -11)), 1.0 + std::ldexp(1.0, -9)); // tie -> even
  EXPECT_EQ(round_once_to(Dtype::Float16, std::ldexp(1.0, -25)), 0.0);                  // half the least subnormal
  EXPECT_EQ(round_once_to(Dtype::Float16, std::ldexp(3.0, -26)), std::ldexp(1.0, -24));
  EXPECT_EQ(round_once_to(Dtype::Float16, 65519.0), 65504.0);
  EXPECT_TRUE(std::isinf(round_once_to(Dtype::Float16, 65520.0)));
  EXPECT_EQ(round_once_to(Dtype::BFloat16, 1.0 + std::ldexp(1.0, -8)), 1.0);
  EXPECT_EQ(round_once_to(Dtype::BFloat16, 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40)), 1.0 + std::ldexp(1.0, -7));
}

TEST(Dtype, FusedMultiplyAddRoundsOnceEvenWhereDoubleCannotHoldTheSum) {
  // (1 + 2^-7) * 1.5 = 1.5 + 2^-7 + 2^-8: exactly halfway between two bfloat16 values.
  const double a = 1.0 + std::ldexp(1.0, -7), b = 1.5;
  EXPECT_EQ(fused_multiply_add(Dtype::BFloat16, a, b, 0.0), 1.5 + std::ldexp(1.0, -6));  // tie -> even
  // A bfloat16 c of 2^-100 is lost when double adds it, yet it decides the tie.
  EXPECT_EQ(fused_multiply_add(Dtype::BFloat16, a, b, std::ldexp(1.0, -100)), 1.5 + std::ldexp(1.0, -6));
  EXPECT_EQ(fused_multiply_add(Dtype::BFloat16, a, b, -std::ldexp(1.0, -100)), 1.5 + std::ldexp(1.0, -7));
  // float16: the product is kept whole before the one rounding (rounding it first would give 1).
  EXPECT_EQ(fused_multiply_add(Dtype::Float16, 1.0 + std::ldexp(1.0, -6), 1.0 + std::ldexp(1.0, -6), -1.0),
            std::ldexp(1.0, -5) + std::ldexp(1.0, -12));
}

TEST(Dtype, NamesRoundTripAndUnknownNamesAreRefused) {
  for (Dtype d : {Dtype::Float64, Dtype::Float32, Dtype::Float16, Dtype::BFloat16}) EXPECT_EQ(parse_dtype(dtype_name(d)), d);
  try {
    parse_dtype("float8");
    FAIL() << "float8 accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("float8"), std::string::npos);
  }
}
