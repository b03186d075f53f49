"""pytest helpers: one test over every case of a fixture tree.

    import pytest, qoracle, qoracle.testing

    @pytest.mark.parametrize("case", qoracle.testing.cases("fixtures/peft"))
    def test_my_kernel(case):
        assert qoracle.judge(case, my_kernel(case))
"""
import os
import warnings

import pytest

from . import _core
from ._load import fixture_files


class UnreadableCase:
    """Stands for a file or case the reader refused: any use raises its qoracle.Error, so the
    damage shows as one failing test naming the file instead of a collection error."""

    def __init__(self, message):
        self._message = message

    def __getattr__(self, name):
        if name.startswith("_"):  # copy, pickle, hasattr(x, "__x__"): no such attribute, not the error
            raise AttributeError(name)
        raise _core.Error(self._message)

    def __repr__(self):
        return f"<qoracle.testing.UnreadableCase: {self._message}>"


def _label(file, roots):
    for root in roots:
        if os.path.isdir(root) and os.path.abspath(file).startswith(os.path.abspath(root) + os.sep):
            return os.path.relpath(file, root)
    return file


def cases(paths, select=None):
    """pytest.param(case, id="<file>::<case name>") for every case of the .h5 files under `paths`
    (a path or a list; folders searched recursively), for @pytest.mark.parametrize.

    select: an optional predicate on qoracle.Case (e.g. lambda c: c.layer_kind == "lora/linear").
    A file or case that cannot be read, or a folder without fixtures, becomes one parameter whose
    use raises its error; a file's notes are warnings.
    """
    roots = [os.fspath(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    params = []
    try:
        files = fixture_files(roots)
    except _core.Error as e:  # a folder without fixtures: one failing test, not a silent skip
        return [pytest.param(UnreadableCase(str(e)), id=",".join(roots))]
    for read in _core.read_files(files):  # one child for all of them
        label = _label(read.file, roots)
        if read.error:
            params.append(pytest.param(UnreadableCase(read.error), id=label))
            continue
        for note in read.notes:  # e.g. written without checksums
            warnings.warn(note, stacklevel=2)
        for c in read.cases:
            if c.case is None:
                params.append(pytest.param(UnreadableCase(c.error), id=f"{label}::{c.name}"))
            elif select is None or select(c.case):
                params.append(pytest.param(c.case, id=f"{label}::{c.name}"))
    return params
