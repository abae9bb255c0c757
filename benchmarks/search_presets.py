"""Does the search find something at least as good as each published LowFormer B model?

    python benchmarks/search_presets.py [--device raspi5] [--trials 1000] [--sampler nsga2]

For each of B0, B1, B1.5, B2 and B3 the budget is the preset's own predicted upper bound (so the
preset is feasible), and the question is whether the search finds ANOTHER architecture with
predicted latency no higher and score no lower. The presets are enqueued as seeds, so the
preset itself is always in the study; it does not count.
"""

from __future__ import annotations

import argparse
import tempfile

from explorer.db import database_url, open_database, resolve_device
from explorer.search import Evaluator, ModelSource, SearchSettings, run_search
from explorer.search.space import reference_configs
from explorer.search.study import evaluations, feasible

PRESETS = ("lowformer-b0", "lowformer-b1", "lowformer-b1.5", "lowformer-b2", "lowformer-b3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="raspi5")
    parser.add_argument("--objective", default="default")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--sampler", default="nsga2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    db = open_database(args.db)
    with db.session() as session:
        device = resolve_device(session, args.device).name
    source = ModelSource(database_url(args.db), device, args.objective)
    evaluator = Evaluator(*source())
    configs = reference_configs(224)
    print(f"device {device}, objective {evaluator.objective.name} ({evaluator.objective.label}), "
          f"{args.trials} trials of {args.sampler} per preset; latency = predicted median")
    found = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in PRESETS:
            [preset] = evaluator.evaluate([configs[name]])
            settings = SearchSettings(device, round(preset.high_ms, 3), evaluator.objective.name, args.trials,
                                      args.sampler, args.seed, study_name=name)
            study = run_search(settings, f"sqlite:///{tmp}/{name}.db", source, evaluator=evaluator)
            better = [e for t, e in evaluations(study) if feasible(t) and e.arch_id != preset.arch_id
                      and e.latency_ms <= preset.latency_ms and e.score >= preset.score]
            found += bool(better)
            line = (f"{name:>15}: preset {preset.latency_ms:7.2f} ms, score {preset.score:.4g}; budget "
                    f"{settings.budget_ms:g} ms; ")
            if better:
                best = max(better, key=lambda e: (e.score, -e.latency_ms))
                fastest = min(better, key=lambda e: e.latency_ms)
                line += (f"FOUND {len(better)} dominating: best score {best.score:.4g} at {best.latency_ms:.2f} ms "
                         f"({best.arch_id}); fastest {fastest.latency_ms:.2f} ms ({fastest.arch_id}) at score "
                         f"{fastest.score:.4g}")
            else:
                line += "none found"
            print(line)
    print(f"found for {found}/{len(PRESETS)} presets")


if __name__ == "__main__":
    main()
