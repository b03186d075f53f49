#include <gtest/gtest.h>
TEST(Dtype, Placeholder) {}
