"""Reading fixture files (fixtures/SCHEMA.md) through the C++ reader."""
import os
import warnings

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


def read_file(path):
    """One fixture file read whole, as `qoracle check` reads it: HDF5 runs in a child process, so a
    damaged file that crashes or hangs libhdf5 becomes an error here, never a crash of Python.
    Returns a FileRead: .error (the file could not be listed), .notes, and .cases, each with .name
    and either .case or .error (naming the file, the case and the field)."""
    return _core.read_file(os.fspath(path))


def load(path):
    """Every case of a fixture file, or of every .h5 file under a folder, as qoracle.Case objects.

    Raises qoracle.Error naming the file, case and field for a file that is missing, damaged or
    not in the schema (qoracle.testing.cases turns such a file into one failing test instead). A
    file's notes (e.g. written without checksums) are issued as warnings."""
    cases = []
    for f in fixture_files(path):
        read = read_file(f)
        if read.error:
            raise _core.Error(read.error)
        for note in read.notes:
            warnings.warn(note, stacklevel=2)
        for c in read.cases:
            if c.case is None:
                raise _core.Error(c.error)
            cases.append(c.case)
    return cases
