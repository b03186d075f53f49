"""Damaged fixture files in Python (fixtures/SCHEMA.md, "Damaged files never take qoracle down"):
a file that crashes libhdf5 is a qoracle.Error naming the file, never a crash of the interpreter;
a flipped bit in golden data is reported as damage, never read as a value; a file written before
checksums loads with a warning."""
import shutil

import pytest

import qoracle
import qoracle.testing
from conftest import FIXTURES, REPO

# Damaged copies of old fixtures that crash Debian's libhdf5 1.10.8 when read in process
# (conformance/tests/data/crashes_hdf5, reports/damaged-fixtures.md).
CRASHES_HDF5 = sorted((REPO / "conformance" / "tests" / "data" / "crashes_hdf5").glob("*.h5"))
UNSEALED = REPO / "conformance" / "tests" / "data" / "unsealed" / "lora_linear_before_checksums.h5"


@pytest.mark.filterwarnings("ignore:.*without checksums")
def test_files_that_crash_hdf5_are_errors_naming_them_never_a_crash():
    # Whether libhdf5 crashes on such a file depends on what its garbage pointers meet, so in a
    # given process it may also read one "successfully"; what never happens is the interpreter
    # dying (in process, this test dies with SIGSEGV).
    assert len(CRASHES_HDF5) == 3, "the crashing copies are missing"
    crashed = []
    for path in CRASHES_HDF5:
        try:
            qoracle.load(path)
        except qoracle.Error as e:
            assert path.name in str(e), str(e)
            if "HDF5 could not read it" in str(e):
                crashed.append(path.name)
    assert crashed, "no copy crashed libhdf5 in the reader's child: the test shows nothing"


def test_read_file_names_the_file_and_case_of_each_error():
    for path in CRASHES_HDF5:
        read = qoracle.read_file(path)
        for c in read.cases:
            if c.case is not None:
                continue
            assert path.name in c.error and c.name in c.error, c.error


@pytest.mark.filterwarnings("ignore:.*without checksums")
def test_testing_cases_reads_the_other_files_beside_a_crashing_one(tmp_path):
    shutil.copy(CRASHES_HDF5[0], tmp_path / "crashes.h5")
    shutil.copy(FIXTURES / "reference" / "lora_linear.h5", tmp_path / "good.h5")
    params = qoracle.testing.cases(tmp_path)
    bad = [p for p in params if isinstance(p.values[0], qoracle.testing.UnreadableCase)]
    assert {p.id.split("::")[0] for p in bad} <= {"crashes.h5"}
    good = [p.values[0].name for p in params if p.id.startswith("good.h5::")]
    assert good == [c.name for c in qoracle.load(tmp_path / "good.h5")]


def test_a_flipped_bit_in_golden_data_is_damage_not_a_value(tmp_path):
    good = FIXTURES / "reference" / "lora_linear.h5"
    case = qoracle.load(good)[0]
    data = bytearray(good.read_bytes())
    stored = case.x.tobytes()  # float64, little-endian, unfiltered but for Fletcher32: its bytes as stored
    at = data.find(stored)
    assert at >= 0 and data.find(stored, at + 1) < 0, "the input's bytes are not found once in the file"
    data[at + len(stored) // 2] ^= 0x04
    damaged = tmp_path / "flipped.h5"
    damaged.write_bytes(bytes(data))
    with pytest.raises(qoracle.Error) as e:
        qoracle.load(damaged)
    message = str(e.value)
    assert "flipped.h5" in message and case.name in message and "damaged (checksum mismatch" in message, message


def test_a_file_without_checksums_loads_with_a_warning():
    with pytest.warns(UserWarning, match="without checksums"):
        cases = qoracle.load(UNSEALED)
    assert cases and all(c.layer_kind == "lora/linear" for c in cases)


def test_an_unreadable_case_raises_its_error_but_copies_and_answers_hasattr():
    import copy
    u = qoracle.testing.UnreadableCase("f.h5: damaged")
    assert not hasattr(u, "__array__") and copy.copy(u) is not None
    with pytest.raises(qoracle.Error, match="f.h5: damaged"):
        u.x


def test_a_folder_without_fixtures_is_an_error_not_an_empty_test_list(tmp_path):
    (tmp_path / ".venv").mkdir()
    shutil.copy(FIXTURES / "reference" / "lora_linear.h5", tmp_path / ".venv" / "hidden.h5")  # skipped, as by the CLI
    with pytest.raises(qoracle.Error, match="no .h5 fixture files"):
        qoracle.load(tmp_path)
    params = qoracle.testing.cases(tmp_path)
    assert len(params) == 1 and isinstance(params[0].values[0], qoracle.testing.UnreadableCase)


def test_testing_cases_warns_of_a_file_without_checksums(tmp_path):
    shutil.copy(UNSEALED, tmp_path / "old.h5")
    with pytest.warns(UserWarning, match="without checksums"):
        params = qoracle.testing.cases(tmp_path)
    assert params
