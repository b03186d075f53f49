#pragma once
// Where PEFT deviates from the math, the reference computes the math by default and
// reproduces PEFT in Convention::Peft. reports/peft-deviations.md lists each place.
#include <string>

namespace qoracle {

enum class Convention { Math, Peft };

inline const char* convention_name(Convention c) { return c == Convention::Math ? "math" : "peft"; }
Convention parse_convention(const std::string& name);  // defined in validate.cpp

}  // namespace qoracle
