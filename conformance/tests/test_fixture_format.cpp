// HDF5 fixture format v1: what is written is read back exactly.
#include <gtest/gtest.h>

#include <fstream>
#include <optional>

#include "conformance/case_runner.hpp"
#include "fixture_edit.hpp"
#include "reference/peft_release.hpp"
#include "test_support.hpp"

using namespace qoracle;
using namespace qoracle::testing;

TEST(FixtureFormat, RoundTripIsExact) {
  const FixtureCase written = make_reference_case(small_oft_spec());
  const std::string path = temp_file("round_trip.h5");
  write_fixture_file(path, {written});
  ASSERT_EQ(list_cases(path), std::vector<std::string>{written.name});
  const FixtureCase read = read_case(path, written.name);
  EXPECT_EQ(read.layer_kind, written.layer_kind);
  EXPECT_EQ(read.seed, written.seed);
  EXPECT_EQ(read.producer, written.producer);
  EXPECT_EQ(read.producer_versions, written.producer_versions);
  EXPECT_EQ(read.active_adapters, written.active_adapters);
  EXPECT_EQ(read.x.shape, written.x.shape);
  EXPECT_EQ(read.x.values, written.x.values);  // bitwise: float64 stored as float64
  EXPECT_EQ(read.base.tensor("bias").values, written.base.tensor("bias").values);
  EXPECT_EQ(read.base.tensor("weight").values, written.base.tensor("weight").values);
  ASSERT_EQ(read.adapters.size(), 1u);
  EXPECT_EQ(read.adapters[0].tensors.at("weight").values, written.adapters[0].tensors.at("weight").values);
  EXPECT_EQ(read.adapters[0].config.get_bool("use_cayley_neumann"), written.adapters[0].config.get_bool("use_cayley_neumann"));
  EXPECT_EQ(read.adapters[0].config.get_double("eps"), written.adapters[0].config.get_double("eps"));
  ASSERT_EQ(read.expected.size(), written.expected.size());
  for (const auto& e : written.expected) {
    const auto it = std::find_if(read.expected.begin(), read.expected.end(), [&](const auto& r) { return r.name == e.name; });
    ASSERT_NE(it, read.expected.end()) << e.name;
    EXPECT_EQ(it->value.values, e.value.values) << e.name;
    EXPECT_EQ(it->tolerance.rtol, e.tolerance.rtol) << e.name;
  }
  for (const auto& row : check_case(read)) EXPECT_EQ(row.status, CheckStatus::Pass) << row.output << " " << row.error;
}

// The gradient inputs and outputs (fixtures/SCHEMA.md, Gradients): training, inputs/grad_output,
// inputs/dropout_noise/<adapter>, expected/grad_x and expected/grad/<adapter>/<param> two levels
// down, with peft_grad_none.
TEST(FixtureFormat, GradientFieldsRoundTrip) {
  FixtureCase written = make_reference_case(small_oft_spec());
  written.training = true;
  written.grad_output = Tensor::from_matrix(Matrix::Constant(2, 6, 0.25), Dtype::Float64);
  written.dropout_noise["first"] = Tensor::from_matrix(Matrix::Constant(2, 8, 2.0), Dtype::Float32);
  written.expected.push_back({"grad_x", Tensor::from_matrix(Matrix::Constant(2, 8, 1.5), Dtype::Float64), {0, 1e-12, 0}});
  written.expected.push_back({"grad/first/weight", Tensor::from_matrix(Matrix::Zero(2, 1), Dtype::Float32), {0, 1e-5, 0}, true});
  const std::string path = temp_file("gradient_fields.h5");
  write_fixture_file(path, {written});
  FixtureCase read = read_case(path, written.name);
  read.file = written.file;
  ASSERT_TRUE(read.grad_output.has_value());
  EXPECT_TRUE(read.training);
  EXPECT_EQ(read.grad_output->values, written.grad_output->values);
  ASSERT_EQ(read.dropout_noise.count("first"), 1u);
  EXPECT_EQ(read.dropout_noise.at("first").logical_dtype, Dtype::Float32);
  const auto grad = std::find_if(read.expected.begin(), read.expected.end(), [](const auto& e) { return e.name == "grad/first/weight"; });
  ASSERT_NE(grad, read.expected.end());
  EXPECT_TRUE(grad->peft_grad_none);
  EXPECT_EQ(grad->value.shape, (std::vector<std::int64_t>{2, 1}));
  const auto gx = std::find_if(read.expected.begin(), read.expected.end(), [](const auto& e) { return e.name == "grad_x"; });
  ASSERT_NE(gx, read.expected.end());
  EXPECT_FALSE(gx->peft_grad_none);
}

TEST(FixtureFormat, LowPrecisionValuesAreStoredWidenedAndExact) {
  FixtureCase c = make_reference_case(small_oft_spec());
  Tensor& x = c.x;
  x.logical_dtype = Dtype::BFloat16;
  for (double& v : x.values) v = round_to(Dtype::BFloat16, v);
  const std::string path = temp_file("bf16.h5");
  write_fixture_file(path, {c});
  const FixtureCase read = read_case(path, c.name);
  EXPECT_EQ(read.x.logical_dtype, Dtype::BFloat16);
  EXPECT_EQ(read.x.values, x.values);
}

namespace {
// A LoRA case with a DoRA adapter in the PEFT convention, claimed by `producer` and `versions`.
FixtureCase peft_lora_case(const std::string& producer, const std::string& versions) {
  CaseSpec spec;
  spec.layer_kind = "lora/linear";
  spec.in_features = 6;
  spec.out_features = 4;
  spec.leading_dims = {2};
  spec.adapters = {AdapterSpec{"d", std::nullopt, LoraConfig{2, 4, false, false, true}}};
  spec.convention = Convention::Peft;
  spec.seed = 41;
  FixtureCase c = make_reference_case(spec);
  c.producer = producer;
  c.producer_versions = versions;
  return c;
}

std::string first_error(const FixtureCase& c) {
  const std::vector<CheckRow> rows = check_case(c);
  return rows.front().status == CheckStatus::Error ? rows.front().error : "";
}
}  // namespace

TEST(PeftRelease, ParsedAndLookedUpInTheRulesTable) {
  EXPECT_EQ(parse_peft_release("0.21.2")->text(), "0.21.2");
  EXPECT_EQ(parse_peft_release("0.22.0.dev0")->text(), "0.22.0");
  EXPECT_FALSE(parse_peft_release("peft").has_value());
  EXPECT_FALSE(parse_peft_release("0.21").has_value());
  EXPECT_TRUE(peft_release_rules(*parse_peft_release("0.18.1")).dora_norms_on_merged_weight);
  EXPECT_TRUE(peft_release_rules(*parse_peft_release("0.20.0")).dora_norms_on_merged_weight);
  EXPECT_FALSE(peft_release_rules(*parse_peft_release("0.21.0")).dora_norms_on_merged_weight);
}

TEST(PeftRelease, ReadFromProducerVersionsAndRefusedWhenUnknown) {
  QORACLE_SEED_TRACE(41);
  EXPECT_EQ(first_error(peft_lora_case("peft", R"({"peft": "0.21.2", "torch": "2.15.0"})")), "");
  EXPECT_EQ(first_error(peft_lora_case("peft-0.21.2", R"({"torch": "2.15.0"})")), "");
  const std::string unknown = first_error(peft_lora_case("peft", R"({"torch": "2.15.0"})"));
  EXPECT_NE(unknown.find("names no PEFT release"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("case '"), std::string::npos) << unknown;
  const std::string two = first_error(peft_lora_case("peft-0.20.0", R"({"peft": "0.21.2"})"));
  EXPECT_NE(two.find("different PEFT releases"), std::string::npos) << two;
  EXPECT_EQ(first_error(peft_lora_case("qoracle-reference", "{}")), "");  // not PEFT: the newest rules
}

// A release newer than the newest verified one is judged by that one's rules, and every row says so.
TEST(PeftRelease, NewerThanVerifiedIsJudgedWithANote) {
  QORACLE_SEED_TRACE(41);
  for (const CheckRow& row : check_case(peft_lora_case("peft-0.21.2", "{}"))) EXPECT_EQ(row.note, "") << row.output;
  const std::vector<CheckRow> rows = check_case(peft_lora_case("peft-0.22.0", R"({"peft": "0.22.0"})"));
  ASSERT_FALSE(rows.empty());
  for (const CheckRow& row : rows) {
    EXPECT_NE(row.status, CheckStatus::Error) << row.error;
    EXPECT_EQ(row.note, "PEFT 0.22.0 is newer than 0.21.2, the newest release qoracle has verified: judged by 0.21.2's rules");
  }
}

// kNewestVerifiedPeftRelease is the newest release the exporter runs.
TEST(PeftRelease, NewestVerifiedIsTheExportersNewest) {
  std::ifstream in(qoracle::testing::source_path("fixtures/export/peft-versions.txt"));
  std::optional<PeftRelease> newest;
  for (std::string line; std::getline(in, line);)
    if (const auto r = parse_peft_release(line); r && !line.starts_with("#") && (!newest || *newest < *r)) newest = r;
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(newest->text(), kNewestVerifiedPeftRelease.text());
}
