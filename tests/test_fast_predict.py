"""``explorer predict`` stays quick: importing the predictors and predicting a preset load neither
torch nor the measurement backends, scikit-learn or scipy's statistics and optimisers (seconds of
imports for a prediction that takes a fraction of one), and a prediction without them is the one
a process that has them loaded makes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: modules a prediction must not load (``scipy.sparse`` is what the features are made of)
HEAVY = {"torch", "explorer.measure.backends", "sklearn", "scipy.stats", "scipy.optimize", "scipy.spatial", "alembic"}
# Runs ``code`` in a fresh interpreter after importing ``first`` (a process that already has them),
# then prints what it wrote and the modules loaded as the last line.
_PROBE = """
import contextlib, importlib, io, json, sys
for name in {first!r}:
    importlib.import_module(name)
out = io.StringIO()
with contextlib.redirect_stdout(out):
    exec({code!r})
print(json.dumps({{"out": out.getvalue(), "modules": sorted(sys.modules)}}))
"""


def _run(code: str, first: tuple[str, ...] = (), env: dict[str, str] | None = None) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE.format(first=first, code=code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_predictors_loads_no_heavy_library():
    loaded = set(_run("import predictors.store")["modules"])
    assert {"predictors.store", "predictors.latency"} <= loaded
    assert HEAVY & loaded == set()


PREDICT = "from explorer.cli import main\nassert main(['predict', '--device', 'raspi5', 'lowformer-b1', '--json']) == 0"


def test_predict_loads_no_heavy_library_and_predicts_as_with_them(shipped_db_env):
    light = _run(PREDICT, env=shipped_db_env)
    assert HEAVY & set(light["modules"]) == set()
    assert "xgboost" in light["modules"]  # the transfer's source is a boosted model: it was used
    heavy = _run(PREDICT, first=("sklearn.base", "scipy.stats", "xgboost"), env=shipped_db_env)
    assert json.loads(light["out"])["latency_ms"] == json.loads(heavy["out"])["latency_ms"] > 0


def test_xgboost_wrappers_still_import_after_a_light_load():
    light = _run("from predictors.latency import _xgboost\n_xgboost().Booster()")
    assert {"xgboost", "xgboost.sklearn", "sklearn"} & set(light["modules"]) == {"xgboost"}
    wrappers = _run("from predictors.latency import _xgboost\n_xgboost()\nfrom xgboost.sklearn import XGBRegressor\n"
                    "from sklearn.base import is_regressor\nprint(is_regressor(XGBRegressor()))")
    assert wrappers["out"].strip() == "True"
