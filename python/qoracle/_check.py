"""Checking a case as `qoracle check` does: one judged row per expected output."""
from . import _core
from ._reference import as_case


class Table(list):
    """qoracle.Judgement rows; truthy when every row passed. str() gives one line per row."""

    @property
    def passed(self):
        return bool(self) and all(row.passed for row in self)

    def __bool__(self):
        return len(self) > 0 and all(row.passed for row in self)

    @property
    def failures(self):
        return [row for row in self if not row.passed]

    def __str__(self):
        if not self:
            if len(self) == 0:
                return ("nothing to compare: the case has no expected outputs (give the spec an `expected` dict, "
                        "or use qoracle.reference to compute them)")
        lines = []
        for row in self:
            allowed = f"{row.allowed:9.2e}" if row.allowed is not None else " " * 9
            lines.append(f"{row.status:5}  {row.output:34}  allowed {allowed}  {row.message}")
        passed = sum(row.passed for row in self)
        lines.append(f"{passed} passed, {len(self) - passed} failed")
        lines += [f"note: {note}" for note in dict.fromkeys(row.note for row in self if row.note)]
        return "\n".join(lines)


def check(case_or_spec):
    """Every expected output of a case (or layer spec) recomputed by the reference and judged with
    its stored tolerance, plus the fp64-referee row of low-precision outputs: the rows `qoracle
    check` prints for the case (without its optimized-kernel rows), as a Table."""
    return Table(_core.check(as_case(case_or_spec)))
