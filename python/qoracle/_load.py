"""Reading fixture files (fixtures/SCHEMA.md) through the C++ reader."""
import os
import warnings

from . import _core


def fixture_files(paths):
    """The .h5 files named by `paths` (a path or a list): files as given, folders searched
    recursively but for hidden folders (a venv's test files), sorted -- what `qoracle check`
    reads. A folder without any .h5 file is a qoracle.Error, as in `qoracle check`."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = []
    for p in map(os.fspath, paths):
        if os.path.isdir(p):
            found = []
            for d, subdirs, names in os.walk(p):
                subdirs[:] = [s for s in subdirs if not s.startswith(".")]
                found += [os.path.join(d, f) for f in names if f.endswith(".h5")]
            if not found:
                raise _core.Error(f"{p}: no .h5 fixture files under it")
            files += sorted(found)
        else:
            files.append(p)  # a missing file is the reader's error to report, with its name
    return files


def read_file(path):
    """One fixture file read whole, as `qoracle check` reads it: HDF5 runs in a child process, so a
    damaged file that crashes or hangs libhdf5 becomes an error here, never a crash of Python.
    Returns a FileRead: .error (the file could not be listed), .notes, and .cases, each with .name
    and either .case or .error (naming the file, the case and the field)."""
    return _core.read_files([os.fspath(path)])[0]


def load(path):
    """Every case of a fixture file, or of every .h5 file under a folder, as qoracle.Case objects.

    Raises qoracle.Error naming the file, case and field for a file that is missing, damaged or
    not in the schema (qoracle.testing.cases turns such a file into one failing test instead). A
    file's notes (e.g. written without checksums) are issued as warnings."""
    if not isinstance(path, (str, bytes, os.PathLike, list, tuple)):
        raise _core.Error(f"load: expected a fixture file or folder path, got {type(path).__name__} {path!r}")
    cases = []
    for read in _core.read_files(fixture_files(path)):  # one child for all of them
        if read.error:
            raise _core.Error(read.error)
        for note in read.notes:
            warnings.warn(note, stacklevel=2)
        for c in read.cases:
            if c.case is None:
                raise _core.Error(c.error)
            cases.append(c.case)
    return cases
