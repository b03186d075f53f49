#pragma once
// The one exception type qoracle throws for bad input. Messages name the field and
// what was expected; callers higher up (fixture reader, CLI) prepend file and case.
#include <stdexcept>
#include <string>

namespace qoracle {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}

  // Returns a copy whose message is prefixed by "context: ", e.g. the file and case.
  [[nodiscard]] Error within(const std::string& context) const { return Error(context + ": " + what()); }
};

}  // namespace qoracle
