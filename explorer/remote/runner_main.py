"""The main program of a bundle's ``runner.py``.

``explorer bundle`` writes ``runner.py`` as the source of ``explorer/measure/protocol.py``
followed by this file (minus its ``explorer`` imports), so a device that has only Python 3.9+,
numpy and onnxruntime measures with the very code of a local campaign. Keep this file free of
any other dependency.

Usage on the device::

    python runner.py BUNDLE_DIR > results.jsonl             # measure everything
    python runner.py BUNDLE_DIR --output results.jsonl      # append; skip what the file holds
    python runner.py BUNDLE_DIR --allow-busy                # do not wait for a quiet machine

``--quiet-wait``, ``--busy-cores`` and ``--allow-busy`` set the quiet-machine guard as they do
for ``explorer measure`` (default: the bundle's settings); a wait is always said on stderr.

With ``--output`` every finished measurement is appended to the file (flushed and synced at
once) and echoed on stdout; a run resumes where an interrupted one stopped (a line cut by the
interruption is dropped), and a model already measured with the same settings by an earlier
bundle is not measured again: its stored line is echoed on stdout first, so stdout always
carries a result for every model of the bundle. One JSON line per measurement; progress goes
to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from explorer.measure.protocol import ProtocolSettings, host_fingerprint, measure, perf_timer, wait_notice

RESULT_FORMAT = "explorer-result/1"
MANIFEST_FORMAT = 1
MANIFEST_NAME = "manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def load_manifest(bundle_dir: Path) -> dict:
    path = bundle_dir / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"runner: cannot read {path}: {err}") from None
    if manifest.get("format") != MANIFEST_FORMAT:
        raise SystemExit(f"runner: {path} has format {manifest.get('format')!r}; "
                         f"this runner reads format {MANIFEST_FORMAT}")
    return manifest


def model_path(bundle_dir: Path, relative: str) -> Path:
    """``relative`` inside ``bundle_dir``; a manifest naming a file elsewhere (``..``, an absolute
    path, a link leading out) is refused, so a bundle cannot make anyone read outside it."""
    root = Path(bundle_dir).resolve()
    path = (root / relative).resolve()
    if root not in path.parents:
        raise ValueError(f"model file {relative!r} lies outside the bundle directory {str(bundle_dir)!r}")
    return path


def finished_lines(path: Path, measurement_key: str) -> dict:
    """Key -> line of the complete ``ok`` lines in ``path`` measured under ``measurement_key``
    (same device, runtime and protocol settings, from this bundle or an earlier one). A last line
    without its newline was cut by an interruption: it is removed so the file stays valid JSONL."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with open(path, "r+b") as handle:
            handle.truncate(len(complete))
        print(f"runner: dropped an incomplete last line of {path}", file=sys.stderr)
    done = {}
    for line in complete.decode(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if (isinstance(record, dict) and record.get("measurement_key") == measurement_key
                and record.get("status") == "ok"):
            done[record.get("key")] = line + "\n"
    return done


def ort_timer(bundle_dir: Path, entry: dict, batch: int, threads, graph_optimization: str, seed: int):
    """A timer running the entry's ONNX model once on a seeded input made beforehand."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, graph_optimization)
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(str(model_path(bundle_dir, entry["file"])), options,
                                       providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - ONNX Runtime's errors share no narrower base class
        detail = (str(err).splitlines() or [""])[0]
        raise ValueError(f"{entry['file']} does not load in ONNX Runtime ({type(err).__name__}: {detail})") from None
    shape = [batch] + list(entry["input_shape"][1:])
    feed = {"input": np.random.default_rng(seed).standard_normal(shape).astype(np.float32)}
    return perf_timer(lambda: session.run(None, feed))


def measure_entry(bundle_dir: Path, manifest: dict, entry: dict, settings: ProtocolSettings,
                  reference, host: dict, on_wait=None) -> dict:
    """One result line for ``entry``: ``ok`` with every sample, or ``failed`` with the error."""
    runtime = manifest["runtime"]
    record = {
        "format": RESULT_FORMAT, "bundle_id": manifest["bundle_id"],
        "measurement_key": manifest["measurement_key"], "device": manifest["device"],
        "key": entry["key"], "purpose": entry["purpose"], "arch_id": entry["arch_id"],
        "name": entry.get("name"), "config": entry["config"],
        "model_sha256": entry["sha256"], "backend": manifest["backend"], "batch": runtime["batch"],
        "threads": runtime["threads"], "resolution": entry["config"].get("resolution"),
        "settings": _settings(manifest, settings), "host": host, "started_at": _now(),
    }
    try:
        actual = _sha256(model_path(bundle_dir, entry["file"]))
        if actual != entry["sha256"]:
            raise ValueError(f"{entry['file']} has sha256 {actual}, the manifest says "
                             f"{entry['sha256']} (incomplete copy?)")
        timer = ort_timer(bundle_dir, entry, runtime["batch"], runtime["threads"],
                          runtime["graph_optimization_level"], manifest["input_seed"])
        result = measure(timer, settings, reference, on_wait=on_wait)
        record.update(status="ok", error=None, result=result.to_dict())
    except Exception as err:  # a model that fails on this device is recorded, the run goes on
        record.update(status="failed", error=f"{type(err).__name__}: {err}", result=None)
    record["ended_at"] = _now()
    return record


def _settings(manifest: dict, settings: ProtocolSettings) -> dict:
    """How the model ran, in the same terms as a local onnxruntime measurement."""
    import onnxruntime as ort

    runtime, reference = manifest["runtime"], manifest["reference"]
    return {"runtime": runtime["runtime"], "onnxruntime": ort.__version__,
            "graph_optimization_level": runtime["graph_optimization_level"],
            "intra_op_num_threads": runtime["threads"], "inter_op_num_threads": 1,
            "opset": runtime["opset"], "protocol": settings.to_dict(),
            "reference": reference and {"name": reference.get("name"), "arch_id": reference["arch_id"],
                                        "resolution": reference["config"].get("resolution")},
            "bundle_id": manifest["bundle_id"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Measure every model of an explorer bundle.")
    parser.add_argument("bundle_dir", type=Path, help="directory holding manifest.json")
    parser.add_argument("--output", type=Path, default=None,
                        help="append results to this file and skip models it already holds")
    parser.add_argument("--quiet-wait", type=float, metavar="SECONDS",
                        help="seconds to wait for a quiet machine before measuring anyway, flagged busy "
                             "(default: the bundle's)")
    parser.add_argument("--busy-cores", type=float, metavar="CORES",
                        help="other processes using more cores than this make the machine busy (default: the "
                             "bundle's)")
    parser.add_argument("--allow-busy", action="store_true",
                        help="measure without waiting for a quiet machine; busy results keep the busy flag")
    args = parser.parse_args(argv)
    manifest = load_manifest(args.bundle_dir)
    settings = guard_settings(manifest["protocol"], args)
    runtime = manifest["runtime"]
    output = open(args.output, "a", encoding="utf-8") if args.output else None
    _lock(output)
    done = finished_lines(args.output, manifest["measurement_key"]) if args.output else {}
    todo = [entry for entry in manifest["models"] if entry["key"] not in done]
    print(f"runner: bundle {manifest['bundle_id']}: {len(todo)} to measure, "
          f"{len(manifest['models']) - len(todo)} already done",
          file=sys.stderr)
    host = host_fingerprint(("numpy", "onnxruntime"))
    try:
        reference = manifest["reference"] and ort_timer(
            args.bundle_dir, manifest["reference"], runtime["batch"], runtime["threads"],
            runtime["graph_optimization_level"], manifest["input_seed"])
    except Exception as err:  # noqa: BLE001 - every model depends on it: stop with one line
        detail = (str(err).splitlines() or [""])[0]
        raise SystemExit(f"runner: the reference model: {detail}; copy the bundle again") from None
    on_wait = wait_notice(lambda text: print(f"runner: {text}", file=sys.stderr, flush=True))
    start = time.monotonic()
    try:
        for entry in manifest["models"]:
            sys.stdout.write(done.get(entry["key"], ""))
        sys.stdout.flush()
        for index, entry in enumerate(todo, 1):
            record = measure_entry(args.bundle_dir, manifest, entry, settings, reference, host, on_wait)
            line = json.dumps(record, separators=(",", ":")) + "\n"
            if output is not None:
                output.write(line)
                output.flush()
                os.fsync(output.fileno())
            sys.stdout.write(line)
            sys.stdout.flush()
            _report(index, len(todo), record, time.monotonic() - start)
    except KeyboardInterrupt:
        print("runner: interrupted; run again with --output to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (a dropped SSH link): what --output holds is safe, stop here
        sys.stdout = open(os.devnull, "w")
        return 141
    return 0


def guard_settings(protocol: dict, args: argparse.Namespace) -> ProtocolSettings:
    """The bundle's protocol with the guard options given on the command line; a bad value
    stops the runner with one line."""
    given = {"quiet_wait_s": args.quiet_wait, "busy_cores": args.busy_cores,
             "allow_busy": True if args.allow_busy else None}
    try:
        return ProtocolSettings(**{**protocol, **{k: v for k, v in given.items() if v is not None}})
    except (TypeError, ValueError) as err:
        raise SystemExit(f"runner: {err}") from None


def _report(index: int, total: int, record: dict, elapsed: float) -> None:
    eta = elapsed / index * (total - index)
    if record["status"] == "ok":
        stats = record["result"]["stats"]
        what = f"median {stats['median']:.3f} ms, n={stats['n']}"
    else:
        what = f"FAILED {record['error']}"
    print(f"runner: [{index}/{total}] {record['arch_id']} {record.get('name') or ''} {what}; "
          f"eta {eta:.0f} s", file=sys.stderr, flush=True)


def _lock(handle) -> None:
    """Wait for a runner still writing the same file (e.g. left behind by a dropped link)."""
    if handle is None:
        return
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, a single runner is the user's business
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print("runner: another runner is writing this file; waiting for it", file=sys.stderr, flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)


if __name__ == "__main__":
    sys.exit(main())
