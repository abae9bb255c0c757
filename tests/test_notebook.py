"""The quickstart notebook runs against the shipped database, as a user would run it."""

import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"
SHIPPED_DB = NOTEBOOK.parents[1] / "measurements.db"


@pytest.mark.skipif(not SHIPPED_DB.exists(), reason="needs the shipped measurements.db")
def test_quickstart_cells_run(monkeypatch, tmp_path):
    shipped_copy = tmp_path / "measurements.db"  # opening may migrate: never touch the shipped file
    shipped_copy.write_bytes(SHIPPED_DB.read_bytes())
    monkeypatch.setenv("EXPLORER_DB", str(shipped_copy))
    namespace: dict = {}
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), namespace)
    median, low, high = namespace["median"], namespace["low"], namespace["high"]
    assert ((low <= median) & (median <= high) & (median > 0)).all()
