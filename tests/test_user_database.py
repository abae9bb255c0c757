"""The shipped database is read, never written; the user's data go to a database of their own,
which takes in a new release's rows without touching the user's; a mistyped --db is an error."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from explorer import resolve
from explorer.cli import main
from explorer.db import AccuracyResult, Device, Measurement, Predictor, ProxyScore, open_database, upsert_architecture
from explorer.db import database as database_module
from explorer.db.release import read_record

ROOT = Path(__file__).resolve().parents[1]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_missing_db_path_is_a_one_line_error_unless_asked_to_create(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "typo.db"
    assert main(["devices", "--db", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err and "--create-db" in err and "Traceback" not in err
    assert not missing.exists()
    monkeypatch.setenv("EXPLORER_DB", str(missing))
    assert main(["devices"]) == 2
    assert "$EXPLORER_DB" in capsys.readouterr().err and not missing.exists()
    assert main(["devices", "--db", str(missing), "--create-db", "--json"]) == 0
    assert missing.exists()
    capsys.readouterr()
    assert main(["devices", "--db", f"sqlite:///{tmp_path / 'url-typo.db'}"]) == 2  # a SQLite URL as well
    assert not (tmp_path / "url-typo.db").exists()


def _result(session, name: str, top1: float, source: str) -> None:
    arch = upsert_architecture(session, resolve(name))
    session.add(AccuracyResult(arch_id=arch.arch_id, dataset="imagenet", top1=top1, epochs=None, source=source,
                               provenance="published"))


def _predictor(session, device: str, kind: str, default: bool) -> None:
    session.add(Predictor(device=device, backend="ort", batch=1, threads=1, kind=kind, feature_version="1",
                          model_format="json", model_blob="{}", is_default=default))


@pytest.fixture
def release(tmp_path, monkeypatch):
    """A small shipped database (a result, a measurement, a default predictor per device) and a
    home of the user's own."""
    shipped = tmp_path / "repo" / "measurements.db"
    shipped.parent.mkdir()
    db = open_database(shipped)
    with db.session() as session:
        _result(session, "lowformer-b0", 78.4, "paper")
        arch = upsert_architecture(session, resolve("lowformer-b1"))
        session.add(Measurement(arch_id=arch.arch_id, device="raspi5-ort", backend="ort", batch=1, threads=1,
                                resolution=224, metric="latency_ms", value=30.0, median_ms=30.0,
                                provenance="published", source="table 1"))
        _predictor(session, "raspi5-ort", "xgboost", True)
        _predictor(session, "jetson-tx2-trt", "xgboost", True)
    db.close()
    monkeypatch.setattr(database_module, "SHIPPED_DB_PATH", shipped)
    monkeypatch.setenv("EXPLORER_HOME", str(tmp_path / "home"))
    return shipped


def test_the_user_database_is_a_copy_and_takes_in_a_new_release_without_touching_the_users_rows(release, capsys):
    untouched = sha256(release)
    mine = open_database()  # first use: the user's database is made from the shipped one
    path = Path(mine.engine.url.database)
    assert path == Path(os.environ["EXPLORER_HOME"]) / "measurements.db"
    assert "created your database" in capsys.readouterr().err
    assert read_record(path)["sha256"] == untouched
    with mine.session() as session:
        [shipped_result] = session.scalars(select(AccuracyResult)).all()
        shipped_result.top1 = 77.9  # the user corrected a release's row
        _result(session, "lowformer-b3", 81.0, "my-training")  # and has rows of their own
        session.add(Device(name="my-board", provenance="measured"))
        _predictor(session, "jetson-tx2-trt", "few-shot", False)  # a predictor the user trained ...
        session.execute(Predictor.__table__.update().where(Predictor.kind == "xgboost",
                                                           Predictor.device == "jetson-tx2-trt").values(is_default=False))
        session.execute(Predictor.__table__.update().where(Predictor.kind == "few-shot").values(is_default=True))
    mine.close()

    release_db = open_database(release)  # the next release: a new result, a changed one, new predictors
    with release_db.session() as session:
        session.scalars(select(AccuracyResult)).one().top1 = 78.5
        _result(session, "lowformer-b2", 80.0, "paper")
        session.execute(Predictor.__table__.update().values(is_default=False))
        _predictor(session, "raspi5-ort", "xgboost-v2", True)
        _predictor(session, "jetson-tx2-trt", "xgboost-v2", True)
    release_db.close()
    new_release = sha256(release)

    mine = open_database()
    err = capsys.readouterr().err
    assert "new release" in err and "accuracy_results" in err and "your own rows are unchanged" in err
    with mine.session() as session:
        results = {(r.source, r.top1) for r in session.scalars(select(AccuracyResult))}
        assert results == {("paper", 77.9), ("my-training", 81.0), ("paper", 80.0)}  # the user's row stands
        assert session.get(Device, "my-board") is not None
        assert len(session.scalars(select(Measurement)).all()) == 1  # already there: not duplicated
        defaults = {p.device: p.kind for p in session.scalars(select(Predictor).where(Predictor.is_default))}
        # the release's new predictor serves where the release's served; the user's own default stays
        assert defaults == {"raspi5-ort": "xgboost-v2", "jetson-tx2-trt": "few-shot"}
    assert read_record(path)["sha256"] == new_release and sha256(release) == new_release
    open_database()
    assert "new release" not in capsys.readouterr().err  # said once


def test_without_a_shipped_file_the_user_database_starts_empty(tmp_path, monkeypatch):
    monkeypatch.setattr(database_module, "SHIPPED_DB_PATH", tmp_path / "absent.db")
    monkeypatch.setenv("EXPLORER_HOME", str(tmp_path / "home"))
    with open_database().session() as session:
        assert session.get(Device, "raspi5-ort") is not None  # the built-in profiles


def _tracked_copy(destination: Path) -> Path:
    """The repository's files as they are in the working tree (tracked, and new ones not ignored),
    committed into a new git repository: a fresh clone of this version."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org"]
    subprocess.run([*git, "init", "-q"], cwd=destination, check=True)
    subprocess.run([*git, "add", "-A"], cwd=destination, check=True)
    subprocess.run([*git, "commit", "-qm", "clone"], cwd=destination, check=True)
    return destination


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "measurements.db").exists(), reason="needs the shipped measurements.db")
def test_a_fresh_clone_stays_clean_after_search_proxy_score_a_notebook_and_opening_the_database(tmp_path,
                                                                                                 monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    clone = _tracked_copy(tmp_path / "clone")
    shipped = sha256(clone / "measurements.db")
    home = tmp_path / "home"
    env = {**os.environ, "EXPLORER_HOME": str(home), "PYTHONPATH": str(clone), "COLUMNS": "200"}
    env.pop("EXPLORER_DB", None)
    commands = [
        ["devices"],
        ["search", "--device", "raspi5", "--budget", "40ms", "--objective", "params", "--trials", "20"],
        ["proxy", "score", "lowformer-b0", "--objective", "synflow"],
    ]
    for command in commands:
        run = subprocess.run([sys.executable, "-c", "import sys; from explorer.cli import main; sys.exit(main())",
                              *command], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stderr[-2000:]
    for key in ("EXPLORER_HOME", "PYTHONPATH"):  # the kernel inherits them
        monkeypatch.setenv(key, env[key])
    monkeypatch.delenv("EXPLORER_DB", raising=False)
    notebook = nbformat.read(clone / "notebooks" / "quickstart.ipynb", as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3",  # run where a user opens it
                   resources={"metadata": {"path": str(clone / "notebooks")}}).execute()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True)
    assert status.stdout == "" and sha256(clone / "measurements.db") == shipped
    assert (home / "measurements.db").exists() and (home / "studies.db").exists()
    with open_database(home / "measurements.db").session() as session:  # the cache went to the user's database
        assert session.scalars(select(ProxyScore).where(ProxyScore.score == "synflow")).first() is not None
