"""The notebooks run top to bottom as a user would run them, each on its own copy of the shipped
database (opening it may migrate; the notebooks write studies, bundles and exports), and are kept
in the repository without outputs."""

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHIPPED_DB = ROOT / "measurements.db"


def test_the_three_notebooks_are_there():
    assert {path.name for path in NOTEBOOKS} >= {"quickstart.ipynb", "your-own-device.ipynb", "beyond-macs.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_outputs_are_stripped(path):
    notebook = nbformat.read(path, as_version=4)
    filled = [i for i, cell in enumerate(notebook.cells)
              if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not filled, f"{path.name}: cells {filled} hold outputs; clear them before committing"


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED_DB.exists(), reason="needs the shipped measurements.db")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    shipped_before = SHIPPED_DB.stat().st_mtime_ns
    shutil.copyfile(SHIPPED_DB, tmp_path / "measurements.db")
    monkeypatch.setenv("EXPLORER_DB", str(tmp_path / "measurements.db"))  # the kernel inherits it
    notebook = nbformat.read(path, as_version=4)
    # a cell that raises fails the test with the cell and its traceback
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert SHIPPED_DB.stat().st_mtime_ns == shipped_before
