"""A shortlist entry that a measured reference network beats on both axes says so."""

from __future__ import annotations

from explorer.search.shortlist import dominating_reference

ENTRY = {"trial": 7, "latency_ms": 20.0, "accuracy": {"mean": 77.0, "interval_90": [75.0, 79.0]}}


def network(name: str, latency_ms: float, top1: float | None, distilled: bool = False, extra_data: str = "") -> dict:
    return {"name": name, "latency_ms": latency_ms, "top1": top1, "distilled": distilled, "extra_data": extra_data}


def test_a_faster_network_with_a_higher_published_top1_than_the_pessimistic_bound_dominates():
    measured = [network("slow-but-better", 25.0, 80.0), network("fast-but-worse", 10.0, 74.0),
                network("fast-and-better", 15.0, 76.0), network("fast-and-best", 18.0, 76.5)]
    found = dominating_reference(ENTRY, measured)
    assert found == {"name": "fast-and-best", "latency_ms": 18.0, "top1": 76.5,
                     "entry_pessimistic_top1": 75.0, "entry_latency_ms": 20.0}


def test_no_dominance_without_both_axes_or_from_distilled_or_pretrained_figures():
    assert dominating_reference(ENTRY, [network("slower", 21.0, 80.0), network("worse", 5.0, 74.9)]) is None
    assert dominating_reference(ENTRY, [network("distilled", 5.0, 80.0, distilled=True)]) is None
    assert dominating_reference(ENTRY, [network("in21k", 5.0, 80.0, extra_data="in21k")]) is None
    assert dominating_reference(ENTRY, [network("unknown top-1", 5.0, None)]) is None
    assert dominating_reference({**ENTRY, "accuracy": None}, [network("any", 5.0, 90.0)]) is None
