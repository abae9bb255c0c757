"""Damaged files: a file that is not SQLite, a truncated database, a database of a newer schema,
a stored predictor whose JSON is cut, ONNX files that do not load. Each is a one-line error
naming what is wrong, the file keeps its bytes (or rows), and what is intact stays usable."""

from __future__ import annotations

import pytest

from explorer.errors import UserError
from explorer.onnx_export import onnx_session
from reliability_support import DAMAGED_FILES, check_damaged, file_fingerprint


@pytest.mark.parametrize("case", sorted(DAMAGED_FILES))
def test_a_damaged_file_is_a_clear_error_and_stays_as_it_was(case, tmp_path):
    outcome = check_damaged(case, tmp_path)
    assert outcome.problem is None, outcome.problem


def test_an_onnx_file_that_does_not_load_names_itself(tmp_path):
    path = tmp_path / "cut.onnx"
    path.write_bytes(b"\x08\x07\x12\x04not onnx" * 10)
    before = file_fingerprint(path)
    with pytest.raises(UserError, match="cut.onnx' does not load in ONNX Runtime") as err:
        onnx_session(path)
    assert "\n" not in str(err.value) and file_fingerprint(path) == before
