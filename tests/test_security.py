"""Security: nothing loads a pickle, names cannot inject code into an exported ``model.py`` nor
write outside the export directory, bundle paths cannot leave the bundle, and SSH refuses a
host whose key changed."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import paramiko
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest_ssh import SSHServer, sshd_server  # noqa: F401  (the fixture)
from explorer import resolve
from explorer.export import ExportItem, directory_name, export_many
from explorer.export.model_source import standalone_model_source
from explorer.remote import BundleError, Manifest, RemoteError, SSHRunner, SSHTarget
from reliability_support import (
    ESCAPING_PATHS,
    ROOT,
    call_cli,
    clear_error,
    fingerprint,
    sqlite_url,
    template_database,
    tiny_bundle,
)

SMALL = resolve("lowformer-b0", resolution=64)
#: directories that are not the project's own code
SKIPPED_DIRS = {".venv", ".venv-reference", "out", ".git", "build", "dist", "node_modules", "__pycache__", ".hypothesis"}


# -- no pickles ---------------------------------------------------------------------------------

def pickle_uses(source: str) -> list[str]:
    """Where ``source`` imports a pickle module or calls a loader that unpickles: ``torch.load``
    without ``weights_only=True``, ``numpy.load(allow_pickle=True)``, ``pandas.read_pickle``,
    ``joblib.load``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        found += [f"line {node.lineno}: import {n}" for n in names
                  if n.split(".")[0] in ("pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve")]
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        call = f"{ast.unparse(node.func.value)}.{node.func.attr}"
        keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
        if (call == "torch.load" and keywords.get("weights_only") != "True") or call in (
                "pd.read_pickle", "pandas.read_pickle") or (
                call in ("np.load", "numpy.load") and keywords.get("allow_pickle") == "True"):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def project_python_files() -> list[Path]:
    return [p for p in sorted(ROOT.rglob("*.py")) if not SKIPPED_DIRS & set(p.relative_to(ROOT).parts)]


def test_the_scan_finds_every_kind_of_pickle_load():
    source = ("import pickle\nfrom joblib import load\nimport torch\ntorch.load('m.pt')\n"
              "torch.load('m.pt', weights_only=False)\nnp.load('a.npy', allow_pickle=True)\n"
              "torch.load('ok.pt', weights_only=True)\nnp.load('ok.npy')\n")
    assert [f.split(":")[0] for f in pickle_uses(source)] == ["line 1", "line 2", "line 4", "line 5", "line 6"]


def test_no_python_file_of_the_project_loads_a_pickle():
    files = project_python_files()
    assert len(files) > 50 and ROOT / "explorer" / "search" / "study.py" in files
    found = {str(p.relative_to(ROOT)): uses for p in files if (uses := pickle_uses(p.read_text()))}
    assert found == {}


# -- exported model.py ----------------------------------------------------------------------------

HOSTILE_NAMES = [
    'x"""\nimport os\nos.system("echo pwned")\n"""',
    "x'''; __import__('os').system('echo pwned'); '''",
    'trial\\"""__import__("os")',
    "study\r\nexec('1')",
    "../../escape",
    "/etc/cron.d/job",
]


def _shape(source: str) -> list[str]:
    """Top-level statements of a module, by kind and name: what injected code would change."""
    tree = ast.parse(source)
    return [type(node).__name__ + ":" + getattr(node, "name", ast.unparse(node)[:40] if not isinstance(
        node, ast.Expr) else "expr") for node in tree.body]


@pytest.mark.parametrize("label", HOSTILE_NAMES)
def test_a_name_cannot_add_code_to_model_py(label):
    plain, hostile = standalone_model_source(SMALL, "plain"), standalone_model_source(SMALL, label)
    tree = ast.parse(hostile)
    assert ast.get_docstring(tree).startswith(f"{label}: ")
    assert len(_shape(hostile)) == len(_shape(plain))
    assert [s.split(":")[0] for s in _shape(hostile)] == [s.split(":")[0] for s in _shape(plain)]
    config = next(node.value.args[0].value for node in tree.body if isinstance(node, ast.Assign)
                  and getattr(node.targets[0], "id", "") == "CONFIG")
    assert json.loads(config) == SMALL.to_dict()


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=40))
def test_an_export_directory_is_one_plain_name(label):
    name = directory_name(label)
    assert name and "/" not in name and "\\" not in name and not name.startswith(".")
    assert (Path("/root-of-exports") / name).parent == Path("/root-of-exports")


@pytest.mark.slow
def test_an_export_named_to_escape_stays_in_its_directory(tmp_path):
    root = tmp_path / "exports"
    (result,) = export_many([ExportItem("../../escape", SMALL, "test")], root)
    assert result.ok and result.directory.parent == root and (result.directory / "model.py").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports"]


# -- bundles --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> tuple[Path, dict]:
    return tiny_bundle(tmp_path_factory.mktemp("bundle"), "b")


@pytest.mark.parametrize("file", ESCAPING_PATHS)
def test_a_manifest_cannot_name_a_file_outside_the_bundle(bundle, tmp_path, file):
    directory, manifest = bundle
    copy = tmp_path / "copy"
    copy.mkdir()
    bad = {**manifest, "models": [{**manifest["models"][0], "file": file}]}
    (copy / "manifest.json").write_text(json.dumps(bad))
    with pytest.raises(BundleError, match="field 'file'.*allowed: a relative path under models/"):
        Manifest.load(copy)
    db = tmp_path / "m.db"
    db.write_bytes(template_database(tmp_path).read_bytes())
    before = fingerprint(sqlite_url(db))
    outcome = call_cli(["ingest", str(tmp_path / "none.jsonl"), "--bundle", str(copy), "--db", str(db)])
    assert clear_error(outcome.code, outcome.err, expected=("file",)) is None, outcome
    assert fingerprint(sqlite_url(db)) == before


def test_the_runner_reads_no_model_through_a_link_out_of_the_bundle(bundle, tmp_path):
    directory, manifest = bundle
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(directory), str(copy)], check=True)
    secret = tmp_path / "secret.onnx"
    secret.write_bytes((directory / manifest["models"][0]["file"]).read_bytes())
    target = copy / manifest["models"][0]["file"]
    target.unlink()
    target.symlink_to(secret)
    done = subprocess.run([sys.executable, "-I", str(copy / "runner.py"), str(copy)], capture_output=True,
                          text=True, timeout=300)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0 and [line["status"] for line in lines] == ["failed", "ok"]
    assert "lies outside the bundle directory" in lines[0]["error"]


# -- SSH ------------------------------------------------------------------------------------------

@pytest.mark.ssh
def test_ssh_refuses_a_host_whose_key_changed(sshd_server: SSHServer, tmp_path):  # noqa: F811
    known_hosts = tmp_path / "known_hosts"
    target = SSHTarget.parse(sshd_server.target, port=sshd_server.port, identity=sshd_server.identity,
                             python=sys.executable, known_hosts=known_hosts, remote_dir=str(tmp_path / "remote"))
    with SSHRunner(target):  # first contact: the key is remembered (OpenSSH's accept-new)
        pass
    host = f"[{sshd_server.host}]:{sshd_server.port}"
    assert known_hosts.read_text().startswith(host)
    impostor = paramiko.RSAKey.generate(2048)
    known_hosts.write_text(f"{host} ssh-rsa {impostor.get_base64()}\n")
    before = known_hosts.read_text()
    with pytest.raises(RemoteError, match="host key of .* changed"):
        with SSHRunner(target):
            pass
    assert known_hosts.read_text() == before
