"""Reading fixture files (fixtures/SCHEMA.md) through the C++ reader."""
import os

from . import _core


def fixture_files(paths):
    """The .h5 files named by `paths` (a path or a list): files as given, folders searched
    recursively, sorted -- what `qoracle check` reads."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = []
    for p in map(os.fspath, paths):
        if os.path.isdir(p):
            found = [os.path.join(d, f) for d, _, names in os.walk(p) for f in names if f.endswith(".h5")]
            files += sorted(found)
        else:
            files.append(p)  # a missing file is the reader's error to report, with its name
    return files


def load(path):
    """Every case of a fixture file, or of every .h5 file under a folder, as qoracle.Case objects.

    Raises qoracle.Error naming the file, case and field for a file that is missing, damaged or
    not in the schema (qoracle.testing.cases turns such a file into one failing test instead)."""
    return [_core.read_case(f, name) for f in fixture_files(path) for name in _core.list_cases(f)]
