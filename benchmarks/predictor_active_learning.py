"""Active learning versus random sampling, simulated on stored measurements (nothing is measured).

The device's measured architectures are split into a fixed held-out test set and a pool. Both
strategies start from the same ``--start`` random architectures of the pool and then "measure"
``--step`` more per round (reveal their stored latency): ``random`` at random, ``uncertainty``
with :func:`predictors.active.select_uncertain` (largest spread of the ensemble, with diversity).
After each round the same model is refitted and scored on the test set. Repeated over
``--seeds`` splits; the held-out error against the number of measurements goes to a Plotly page.
``--synthetic N`` uses N random architectures with latencies from a known cost model instead.

    python benchmarks/predictor_active_learning.py [--db measurements.db] [--device local] [-o al.html]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn  # noqa: E402

from explorer.db import open_database  # noqa: E402
from predictors.active import select_uncertain, uncertainty_model  # noqa: E402
from predictors.features import OpFeaturizer  # noqa: E402
from predictors.metrics import regression_metrics  # noqa: E402
from predictors.store import load_training_set  # noqa: E402
from predictor_accuracy import synthetic_set  # noqa: E402  (sibling script)

STRATEGIES = ("random", "uncertainty")


def simulate(X: np.ndarray, y: np.ndarray, seed: int, start: int, step: int, budget: int,
             test_fraction: float, progress) -> dict[str, list[tuple[int, dict]]]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_test = int(len(y) * test_fraction)
    test, pool = order[:n_test], order[n_test:]
    curves: dict[str, list[tuple[int, dict]]] = {}
    for strategy in STRATEGIES:
        labelled = list(pool[:start])
        curve = []
        while True:
            model = uncertainty_model(len(labelled), seed).fit(X[labelled], y[labelled])
            curve.append((len(labelled), regression_metrics(y[test], model.predict(X[test]))))
            progress()
            if len(labelled) >= budget:
                break
            remaining = np.setdiff1d(pool, labelled)
            k = min(step, budget - len(labelled), len(remaining))
            if strategy == "random":
                labelled += list(rng.choice(remaining, k, replace=False))
            else:
                labelled += list(remaining[select_uncertain(model, X[remaining], k)])
        curves[strategy] = curve
    return curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=None)
    parser.add_argument("--device", default="local")
    parser.add_argument("--synthetic", type=int, default=0)
    parser.add_argument("--start", type=int, default=20)
    parser.add_argument("--step", type=int, default=20)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("-o", "--output", default="predictor_active_learning.html")
    args = parser.parse_args()

    if args.synthetic:
        data = synthetic_set(args.synthetic)
    else:
        with open_database(args.db).session() as session:
            data = load_training_set(session, args.device)
    X, y = OpFeaturizer().transform(data.configs), data.latency_ms
    budget = min(args.budget, int(len(y) * (1 - args.test_fraction)))
    rounds = len(STRATEGIES) * args.seeds * (1 + -(-(budget - args.start) // args.step))
    runs = []
    with Progress(TextColumn("simulating"), BarColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task("rounds", total=rounds)
        for seed in range(args.seeds):
            runs.append(simulate(X, y, seed, args.start, args.step, budget, args.test_fraction,
                                 lambda: bar.advance(task)))

    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    console = Console(width=120)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("held-out MAPE (%)", "held-out within +-10 % (%)"))
    console.print(f"{data.setup.device}: {len(y)} architectures, mean over {args.seeds} splits")
    console.print(f"{'measured':>9s}  " + "  ".join(f"{s + ' MAPE':>17s} {s + ' +-10%':>18s}" for s in STRATEGIES))
    sizes = [n for n, _ in runs[0]["random"]]
    summary = {}
    for strategy, colour in zip(STRATEGIES, ("#888888", "#1f77b4")):
        mape = np.array([[m["mape"] for _, m in run[strategy]] for run in runs]).mean(axis=0)
        within = np.array([[m["within_10"] for _, m in run[strategy]] for run in runs]).mean(axis=0)
        summary[strategy] = (mape, within)
        fig.add_trace(go.Scatter(x=sizes, y=mape, name=strategy, line={"color": colour}), row=1, col=1)
        fig.add_trace(go.Scatter(x=sizes, y=within, name=strategy, line={"color": colour}, showlegend=False),
                      row=1, col=2)
    for i, n in enumerate(sizes):
        console.print(f"{n:9d}  " + "  ".join(f"{summary[s][0][i]:17.2f} {summary[s][1][i]:18.1f}" for s in STRATEGIES))
    fig.update_xaxes(title_text="measured architectures")
    fig.update_layout(title=f"Active learning vs random sampling on {data.setup.device} "
                            f"(simulated on stored measurements, {args.seeds} splits)", width=1100, height=500)
    fig.write_html(args.output, include_plotlyjs=True)
    console.print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
