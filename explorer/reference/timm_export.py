"""Export published reference networks of timm to ONNX: a script run by ``.venv-reference``'s
Python (torch, torchvision, timm, onnx, fvcore), never imported by the main environment.

    python timm_export.py --out DIR [--fvcore] MODEL:RESOLUTION ...

Each network is built with random weights (``pretrained=False``: latency needs no weights),
re-parameterised for inference as its authors deploy it (MobileOne, FastViT, RepViT fold their
branches), and written to ``DIR/MODEL-RESOLUTION.onnx`` through a partial file, so an interrupted
run leaves no half file. One JSON line per network goes to stdout: ``model``, ``resolution``,
``path``, ``seconds``, with ``--fvcore`` ``fvcore_macs`` and ``fvcore_params`` (fvcore on the
exported module, under the paper's MAC convention), or ``error``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

# the repository root, for explorer.counting's MAC convention (this file is run as a script)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

OPSET = 17  # explorer.onnx_export.DEFAULT_OPSET: the main environment checks it


def export(model_name: str, resolution: int, out: Path, with_fvcore: bool) -> dict:
    import timm
    import torch
    from timm.utils.model import reparameterize_model

    started = time.perf_counter()
    torch.manual_seed(0)
    model = reparameterize_model(timm.create_model(model_name, pretrained=False).eval())
    example = torch.zeros(1, 3, resolution, resolution)
    path = out / f"{model_name}-{resolution}.onnx"
    partial = path.with_suffix(".onnx.partial")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(partial), opset_version=OPSET, dynamo=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          do_constant_folding=True)
    os.replace(partial, path)
    line = {"model": model_name, "resolution": resolution, "path": str(path)}
    if with_fvcore:
        from explorer.counting import module_counts

        line["fvcore_macs"], line["fvcore_params"] = module_counts(model, example)
    return {**line, "seconds": round(time.perf_counter() - started, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--fvcore", action="store_true", help="also count MACs and params with fvcore")
    parser.add_argument("networks", nargs="+", metavar="MODEL:RESOLUTION")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for spec in args.networks:
        name, _, resolution = spec.rpartition(":")
        try:
            line = export(name, int(resolution), args.out, args.fvcore)
        except Exception as err:  # noqa: BLE001 - one network that does not build is a result, not a stop
            last = traceback.extract_tb(err.__traceback__)[-1]
            line = {"model": name, "resolution": int(resolution),
                    "error": f"{type(err).__name__}: {str(err)[:300]} ({Path(last.filename).name}:{last.lineno})"}
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
