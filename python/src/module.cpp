// qoracle._core: the C++ reference, fixture reader/writer and conformance checks, bound for Python.
// Everything numerical happens in the linked libraries; this file only converts and forwards.
// qoracle::Error becomes qoracle.Error (a ValueError) with the C++ message: file, case, field, expected.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "arrays.hpp"
#include "case_spec.hpp"
#include "conformance/case_runner.hpp"
#include "conformance/judge_result.hpp"
#include "conformance/tolerances.hpp"
#include "fixtures/format/isolated_read.hpp"
#include "reference/error.hpp"
#include "reference/float64_products.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace qoracle::python {
namespace {

FixtureCase with(FixtureCase c, const std::optional<std::string>& dtype, const std::optional<std::string>& convention) {
  try {
    if (dtype) c.dtype = parse_dtype(*dtype);
    if (convention) c.convention = parse_convention(*convention);
  } catch (const Error& e) {
    throw e.within(c.where());
  }
  return c;
}

std::vector<std::string> expected_names(const FixtureCase& c) {
  std::vector<std::string> names;
  for (const ExpectedOutput& e : c.expected) names.push_back(e.name);
  return names;
}

// The reference's value of each output, in the case's own dtype and convention unless overridden.
nb::dict evaluate(const FixtureCase& c, const std::vector<std::string>& outputs, const std::optional<std::string>& dtype,
                  const std::optional<std::string>& convention) {
  const FixtureCase run = with(c, dtype, convention);
  std::vector<std::string> names = outputs.empty() ? expected_names(run) : outputs;
  if (names.empty()) names = {"forward"};  // a layer spec without expected outputs
  nb::dict d;
  for (const auto& [name, t] : evaluate_case(run, names)) d[name.c_str()] = array_from_tensor(t);
  return d;
}

// The allowance `qoracle check` adds to each expected output's stored tolerance where PEFT's own
// error grows with the problem (conformance/derived_bounds.hpp), {name: absolute bound}.
nb::dict derived_bounds(const FixtureCase& c) {
  nb::dict d;
  for (const auto& [name, bound] : evaluate_case_with_bounds(c, expected_names(c)).bounds) d[name.c_str()] = bound.value;
  return d;
}

CheckRow named_row(const std::string& output) {
  CheckRow row;
  row.output = output;
  row.case_name = "<arrays>";
  return row;
}

// equal_nan = false (torch.testing.assert_close's default): a NaN in the result fails even where
// the expected value is NaN too.
CheckRow compare_arrays(nb::handle expected, nb::handle actual, double atol, double rtol, double max_mismatch_fraction,
                        const std::string& output, bool equal_nan) {
  CheckRow row = named_row(output);
  row.comparison = compare(tensor_from_object(expected, output + ": expected"), tensor_from_object(actual, output + ": actual"),
                           Tolerance{atol, rtol, max_mismatch_fraction});
  if (!equal_nan && row.comparison.nan_actual > 0) row.comparison.passed = false;
  row.status = row.comparison.passed ? CheckStatus::Pass : CheckStatus::Fail;
  if (!row.comparison.shape_ok) row.error = output + ": " + row.comparison.shape_message;
  return row;
}

CheckRow referee_arrays(nb::handle oracle, nb::handle baseline, nb::handle result, const std::string& dtype,
                        const std::string& output) {
  const Dtype d = parse_dtype(dtype);
  const Tensor o = tensor_from_object(oracle, output + ": oracle"), b = tensor_from_object(baseline, output + ": expected"),
               r = tensor_from_object(result, output + ": actual");
  if (o.shape != b.shape || o.shape != r.shape)
    throw Error(output + ": shapes differ: oracle " + o.shape_string() + ", expected " + b.shape_string() + ", actual " +
                r.shape_string());
  CheckRow row = named_row(output + "@fp64-referee");
  row.referee = judge_against_oracle(o, b, r, oracle_factor(d), d);
  row.status = row.referee->passed ? CheckStatus::Pass : CheckStatus::Fail;
  return row;
}

// A result the caller computed its own way for one output of a case (judge_result's rule).
CheckRow judge_on_case(const FixtureCase& c, const std::string& output, nb::handle actual, const std::string& dtype) {
  const Dtype d = parse_dtype(dtype);
  CheckRow row = case_row(c);
  row.output = output;
  const ExpectedOutput* expected = nullptr;
  for (const ExpectedOutput& e : c.expected)
    if (e.name == output) expected = &e;
  if (!expected) {
    std::string known;
    for (const auto& n : expected_names(c)) known += (known.empty() ? "" : ", ") + n;
    throw Error(c.where() + ": expected/" + output + ": the case has no such output; it has " + known);
  }
  const Tensor result = tensor_from_object(actual, c.where() + ": actual " + output);
  if (result.shape != expected->value.shape)
    throw Error(c.where() + ": actual " + output + ": expected shape " + expected->value.shape_string() + ", got " +
                result.shape_string());
  FixtureCase exact = c;
  exact.dtype = Dtype::Float64;
  const Tensor oracle = evaluate_case(exact, {output}).at(output);
  return judge_result(row, d, oracle, expected->value, result);
}

std::string case_repr(const FixtureCase& c) {
  return "<qoracle.Case '" + c.name + "' " + c.layer_kind + " " + dtype_name(c.dtype) + " " + convention_name(c.convention) +
         " from " + c.file + ">";
}

std::string row_repr(const CheckRow& r) {
  return std::string("<qoracle.Judgement ") + status_name(r.status) + " " + r.output + ": " + row_detail(r) + ">";
}

nb::object optional_number(bool present, double v) { return present ? nb::object(nb::float_(v)) : nb::none(); }

// A number of the tolerance rule's comparison, as a property: None under the fp64 referee or for an error row.
template <class T>
auto comparison_field(T Comparison::*field) {
  return [field](const CheckRow& r) -> nb::object {
    if (r.referee || !r.error.empty()) return nb::none();
    return nb::cast(r.comparison.*field);
  };
}

}  // namespace
}  // namespace qoracle::python

NB_MODULE(_core, m) {
  using namespace qoracle;
  using namespace qoracle::python;
  m.doc() = "qoracle's C++ reference, fixture format and conformance checks (use the qoracle package, not this)";
  nb::exception<Error>(m, "Error", PyExc_ValueError);

  nb::class_<FixtureCase>(m, "Case", "One fixture case: a layer, its adapters, its input and expected outputs.")
      .def("__init__", [](FixtureCase* self, nb::handle spec) { new (self) FixtureCase(case_from_spec(spec)); }, "spec"_a,
           "A case from a layer spec: a dict laid out like fixtures/SCHEMA.md (see qoracle.Case's docs).")
      .def_prop_ro("name", [](const FixtureCase& c) { return c.name; })
      .def_prop_ro("file", [](const FixtureCase& c) { return c.file; })
      .def_prop_ro("where", &FixtureCase::where)
      .def_prop_ro("schema_version", [](const FixtureCase& c) { return c.schema_version; })
      .def_prop_ro("layer_kind", [](const FixtureCase& c) { return c.layer_kind; })
      .def_prop_ro("dtype", [](const FixtureCase& c) { return std::string(dtype_name(c.dtype)); })
      .def_prop_ro("convention", [](const FixtureCase& c) { return std::string(convention_name(c.convention)); })
      .def_prop_ro("seed", [](const FixtureCase& c) { return c.seed; })
      .def_prop_ro("producer", [](const FixtureCase& c) { return c.producer; })
      .def_prop_ro("producer_versions", [](const FixtureCase& c) { return c.producer_versions; })
      .def_prop_ro("description", [](const FixtureCase& c) { return c.description; })
      .def_prop_ro("active_adapters", [](const FixtureCase& c) { return c.active_adapters; })
      .def_prop_ro("merge_adapters", [](const FixtureCase& c) { return c.merge_adapters; })
      .def_prop_ro("base", [](const FixtureCase& c) { return group_dict(c.base.config, c.base.tensors); })
      .def_prop_ro("adapters", &adapters_dict)
      .def_prop_ro("x", [](const FixtureCase& c) { return array_from_tensor(c.x); })
      .def_prop_ro("expected", &expected_dict)
      .def_prop_ro("training", [](const FixtureCase& c) { return c.training; })
      .def_prop_ro("grad_output", [](const FixtureCase& c) {
        return c.grad_output ? nb::object(array_from_tensor(*c.grad_output)) : nb::none();
      })
      .def_prop_ro("dropout_noise", &dropout_noise_dict)
      .def_prop_ro("peft_grad_none", &peft_grad_none_list)
      .def_prop_ro("outputs", &expected_names)
      .def_prop_ro("tolerances", &tolerances_dict)
      .def_prop_ro("derived_bounds", &derived_bounds)
      .def_prop_ro("logical_dtypes", &logical_dtypes_dict)
      .def("to_dict", &case_to_spec, "The case as a spec dict: Case(case.to_dict()) is the same case.")
      .def("__repr__", &case_repr);

  nb::class_<CheckRow>(m, "Judgement", "One judged output, as a row of `qoracle check`.")
      .def_prop_ro("passed", [](const CheckRow& r) { return r.status == CheckStatus::Pass; })
      .def("__bool__", [](const CheckRow& r) { return r.status == CheckStatus::Pass; })
      .def_prop_ro("status", [](const CheckRow& r) { return std::string(status_name(r.status)); })
      .def_prop_ro("message", &row_detail)
      .def_prop_ro("rule", [](const CheckRow& r) { return std::string(r.referee ? "fp64-referee" : "tolerance"); })
      .def_prop_ro("output", [](const CheckRow& r) { return r.output; })
      .def_prop_ro("case", [](const CheckRow& r) { return r.case_name; })
      .def_prop_ro("file", [](const CheckRow& r) { return r.file; })
      .def_prop_ro("layer_kind", [](const CheckRow& r) { return r.layer_kind; })
      .def_prop_ro("dtype", [](const CheckRow& r) { return r.dtype; })
      .def_prop_ro("convention", [](const CheckRow& r) { return r.convention; })
      .def_prop_ro("producer", [](const CheckRow& r) { return r.producer; })
      .def_prop_ro("error", [](const CheckRow& r) { return r.error; })
      .def_prop_ro("note", [](const CheckRow& r) { return r.note; })
      // The tolerance rule's numbers (None under the fp64 referee or for an error row).
      .def_prop_ro("mismatched", comparison_field(&Comparison::mismatched))
      .def_prop_ro("total", comparison_field(&Comparison::total))
      .def_prop_ro("max_abs_error", comparison_field(&Comparison::max_abs_error))
      .def_prop_ro("max_abs_index", comparison_field(&Comparison::max_abs_index))
      .def_prop_ro("max_rel_error", comparison_field(&Comparison::max_rel_error))
      .def_prop_ro("rel_frobenius", comparison_field(&Comparison::rel_frobenius))
      .def_prop_ro("atol", [](const CheckRow& r) { return optional_number(!r.referee && r.error.empty(), r.comparison.tolerance.atol); })
      .def_prop_ro("rtol", [](const CheckRow& r) { return optional_number(!r.referee && r.error.empty(), r.comparison.tolerance.rtol); })
      // The fp64 referee's numbers (None under the tolerance rule).
      .def_prop_ro("error_vs_oracle", [](const CheckRow& r) { return optional_number(r.referee.has_value(), r.referee ? r.referee->result_error : 0); })
      .def_prop_ro("baseline_error_vs_oracle", [](const CheckRow& r) { return optional_number(r.referee.has_value(), r.referee ? r.referee->baseline_error : 0); })
      // What the rule allowed: atol + rtol * max|expected|, or k * baseline error + u * max|oracle|.
      .def_prop_ro("allowed", [](const CheckRow& r) {
        if (r.referee) return nb::object(nb::float_(r.referee->bound));
        return optional_number(r.error.empty(), r.comparison.bound);
      })
      .def("__repr__", &row_repr);

  nb::class_<CaseRead>(m, "CaseRead", "One case of a file read by read_files: the case, or the error that stopped it.")
      .def_ro("name", &CaseRead::name)
      .def_prop_ro("case", [](const CaseRead& r) { return r.fixture; })
      .def_ro("error", &CaseRead::error);
  nb::class_<FileRead>(m, "FileRead", "A fixture file read whole: its cases, or why it could not be listed.")
      .def_ro("file", &FileRead::file)
      .def_ro("error", &FileRead::error)
      .def_ro("notes", &FileRead::notes)
      .def_ro("cases", &FileRead::cases);
  // HDF5 1.10 can crash or hang on a damaged file, so the interpreter never runs it on one: a
  // forked child reads the files one after the other, as `qoracle check` does
  // (fixtures/format/isolated_read.hpp); a fresh one only after a crash.
  m.def("read_files", [](const std::vector<std::string>& paths) {
    nb::gil_scoped_release unlocked;
    std::vector<FileRead> reads;
    read_fixture_files_isolated(paths, [&](FileRead&& r) { reads.push_back(std::move(r)); });
    return reads;
  }, "paths"_a);
  m.def("write_cases", &write_fixture_file, "path"_a, "cases"_a);
  m.def("known_layer_kinds", &known_layer_kinds);
  m.def("evaluate", &evaluate, "case"_a, "outputs"_a, "dtype"_a.none(), "convention"_a.none());
  // check_case reads only the C++ case: other Python threads run meanwhile (check_model checks
  // several layers at once, as `qoracle check` checks several cases).
  m.def("check", [](const FixtureCase& c) {
    nb::gil_scoped_release unlocked;
    return check_case(c);
  }, "case"_a);
  // Threads one reference call uses for its products (default: every core); check_model sets 1
  // while it checks layers in parallel, as `qoracle check` does.
  m.def("set_reference_threads", &set_reference_threads, "threads"_a);
  m.def("reference_threads", &reference_threads);
  m.def("compare", &compare_arrays, "expected"_a, "actual"_a, "atol"_a, "rtol"_a, "max_mismatch_fraction"_a, "output"_a,
        "equal_nan"_a = false);
  m.def("referee", &referee_arrays, "oracle"_a, "expected"_a, "actual"_a, "dtype"_a, "output"_a);
  m.def("judge_on_case", &judge_on_case, "case"_a, "output"_a, "actual"_a, "dtype"_a);
  m.def("tolerance_for", [](const std::string& dtype, const std::string& output, const std::string& convention) {
    const Tolerance t = tolerance_for(parse_dtype(dtype), output, parse_convention(convention));
    return nb::make_tuple(t.atol, t.rtol, t.max_mismatch_fraction);
  }, "dtype"_a, "output"_a, "convention"_a);
  m.def("oracle_factor", [](const std::string& dtype) { return oracle_factor(parse_dtype(dtype)); }, "dtype"_a);
}
