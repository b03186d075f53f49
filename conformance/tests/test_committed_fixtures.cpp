// Every committed fixture under fixtures/ passes, and each check can fail: perturbing or
// deleting one element of any expected output makes that output FAIL.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "conformance/case_runner.hpp"
#include "reference/seeded_random.hpp"
#include "test_support.hpp"

using namespace qoracle;

namespace {

struct CaseRef {
  std::string file, name;
};
void PrintTo(const CaseRef& r, std::ostream* os) { *os << r.file << " :: " << r.name; }

std::vector<CaseRef> committed_cases() {
  std::vector<CaseRef> refs;
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(qoracle::testing::source_path("fixtures")))
    if (e.is_regular_file() && e.path().extension() == ".h5") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  for (const auto& f : files)
    for (const auto& n : list_cases(f)) refs.push_back({f, n});
  return refs;
}

std::string sanitized(const CaseRef& r) {
  // The folder says which producer and version (fixtures/peft/peft-0.19.1/...), the stem the dtype.
  const auto rel = std::filesystem::relative(r.file, qoracle::testing::source_path("fixtures"));
  std::string s = rel.parent_path().string() + "__" + rel.stem().string() + "__" + r.name;
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

class CommittedFixture : public ::testing::TestWithParam<CaseRef> {};

}  // namespace

TEST(CommittedFixtures, Exist) { EXPECT_GE(committed_cases().size(), 30u); }

TEST_P(CommittedFixture, Passes) {
  for (const auto& row : check_case(read_case(GetParam().file, GetParam().name))) {
    EXPECT_EQ(row.status, CheckStatus::Pass) << row.output << ": " << (row.error.empty() ? row.comparison.message() : row.error);
  }
}

TEST_P(CommittedFixture, EveryExpectedOutputCanFail) {
  const FixtureCase original = read_case(GetParam().file, GetParam().name);
  SeededRandom rng(std::hash<std::string>{}(original.name));
  for (std::size_t i = 0; i < original.expected.size(); ++i) {
    const ExpectedOutput& e = original.expected[i];
    const auto n = static_cast<std::int64_t>(e.value.values.size());
    if (n == 0) continue;
    double max_abs = 0;
    for (double v : e.value.values) max_abs = std::max(max_abs, std::abs(v));
    const double allowed = e.tolerance.atol + e.tolerance.rtol * max_abs;
    // One element more than the tolerance lets go, each moved well past its bound.
    const auto k = std::min<std::int64_t>(
        n, static_cast<std::int64_t>(std::floor(e.tolerance.max_mismatch_fraction * static_cast<double>(n))) + 1);
    const auto start = static_cast<std::int64_t>(rng.next_u64() % static_cast<std::uint64_t>(n));
    FixtureCase perturbed = original;
    for (std::int64_t j = 0; j < k; ++j)
      perturbed.expected[i].value.values[static_cast<std::size_t>((start + j) % n)] += 10 * allowed + 1e-6 * max_abs + 1e-300;
    FixtureCase deleted = original;
    deleted.expected[i].value.values.pop_back();
    deleted.expected[i].value.shape = {static_cast<std::int64_t>(deleted.expected[i].value.values.size())};
    for (const FixtureCase* broken : {&perturbed, &deleted}) {
      const auto rows = check_case(*broken);
      const auto it = std::find_if(rows.begin(), rows.end(), [&](const CheckRow& r) { return r.output == e.name; });
      ASSERT_NE(it, rows.end());
      EXPECT_EQ(it->status, CheckStatus::Fail)
          << e.name << (broken == &perturbed ? " with " + std::to_string(k) + " element(s) perturbed from " + std::to_string(start) : " shortened");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, CommittedFixture, ::testing::ValuesIn(committed_cases()),
                         [](const ::testing::TestParamInfo<CaseRef>& info) { return sanitized(info.param); });
