"""The evaluation that matches how the search uses an accuracy score: within-size pairs, the
smallest results left out, and the default objective's rule built on them."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.cli import main
from predictors.calibration import Evidence, _choose_default, within_size_pairs


def test_within_size_pairs_counts_only_pairs_of_about_the_same_macs():
    macs = np.array([100.0, 110.0, 125.0, 400.0])
    top1 = np.array([70.0, 72.0, 71.0, 78.0])
    n, ordered = within_size_pairs(top1, top1, macs)
    assert n == 3  # 100-110, 100-125, 110-125; nothing pairs with 400
    assert ordered == 1.0
    n, ordered = within_size_pairs(macs, top1, macs)  # size orders 100<110 right, 110<125 wrong, 100<125 right
    assert n == 3 and ordered == pytest.approx(2 / 3)
    assert within_size_pairs(np.zeros(4), top1, macs) == (3, 0.5)  # ties count half
    assert within_size_pairs(top1, top1, np.array([1.0, 2.0, 4.0, 8.0])) == (0, None)


def _evidence(score: str, tau: float, within: float) -> Evidence:
    return Evidence(score, score, "published:imagenet", 20, tau, 0.01, tau, 0.3, 0.3, 1e-3, 10, within)


def test_a_surrogate_that_orders_within_size_pairs_worse_than_size_does_not_become_the_default():
    sets = {"published:imagenet": 20}
    better_within = [_evidence("params", 0.7, 0.6), _evidence("surrogate", 0.9, 0.8)]
    assert _choose_default(sets, better_within, 1.0)[0] == "surrogate-pessimistic"
    worse_within = [_evidence("params", 0.7, 0.8), _evidence("surrogate", 0.9, 0.6)]
    default, reason = _choose_default(sets, worse_within, 1.0)
    assert default == "params"
    assert "orders fewer within-size pairs than size" in reason
    default, reason = _choose_default(sets, better_within, 0.4)  # extrapolates downward badly
    assert default == "params" and "smallest up" in reason


@pytest.mark.slow
def test_the_report_shows_every_held_out_view(tmp_path, capsys):
    from explorer.db import open_database
    from predictors.results import load_published_accuracies

    db_path = tmp_path / "r.db"
    load_published_accuracies(open_database(db_path))
    assert main(["proxy", "report", "--no-compute", "--db", str(db_path), "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    surrogate = out["surrogate"]
    assert {"loo", "leave_one_family_out", "leave_smallest_out", "leave_smallest_out_coverage"} <= set(surrogate)
    assert list(surrogate["leave_smallest_out"]) == ["1", "2", "3", "4", "5"]
    held_out = surrogate["loo_predictions"] + surrogate["leave_smallest_out"]["5"]["results"]
    assert all({"name", "top1", "mean", "interval_90"} <= set(p) for p in held_out)
    rows = {row["score"]: row for row in out["evidence"]}
    assert rows["surrogate"]["within_size_pairs"] == rows["size-rank"]["within_size_pairs"] > 5
    # the done-when of the accuracy axis: the default is at least as good as size within size
    size_best = max(rows[s]["within_size_ordered"] for s in ("params", "macs", "size-rank"))
    default_rank = rows["surrogate"] if out["default"].startswith("surrogate") else rows[out["default"]]
    assert default_rank["within_size_ordered"] >= size_best
    assert main(["proxy", "report", "--no-compute", "--db", str(db_path)]) == 0
    text = capsys.readouterr().out
    assert "leave-the-smallest-k-out" in text and "within-size pairs ordered" in text
