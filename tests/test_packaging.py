"""Packaging (issue #8): worker command, the PyInstaller spec's contents, and `--self-test`.

The bundle itself is not built here (minutes and gigabytes): `packaging/build.sh` does that
and runs the bundle's own `--self-test`.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from restorer.engine import worker_command
from restorer.engine.worker_command import worker_argv

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "restorer.spec"


# ----------------------------------------------------------------------------- worker_argv
def test_worker_argv_from_source(monkeypatch):
    monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3.11")
    assert worker_argv(["train", "sr", "--events", "jsonl"]) == [
        "/usr/bin/python3.11", "-m", "restorer", "train", "sr", "--events", "jsonl"]
    assert worker_command.is_frozen() is False


def test_worker_argv_frozen_uses_the_bundle_executable(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/Restorer/Restorer")
    argv = worker_argv(["train", "inpaint", "--data", Path("/photos"), "--name", "mine"])
    assert argv == ["/opt/Restorer/Restorer", "train", "inpaint", "--data", "/photos", "--name", "mine"]
    assert "-m" not in argv and "python" not in argv[0]
    assert worker_command.is_frozen() is True


def test_worker_argv_copies_its_input(monkeypatch):
    monkeypatch.delattr(sys, "frozen", raising=False)
    args = ["models"]
    out = worker_argv(args)
    out.append("list")
    assert args == ["models"]
    assert worker_argv([]) == [sys.executable, "-m", "restorer"]


def test_worker_argv_runs_a_real_worker(monkeypatch):
    monkeypatch.delattr(sys, "frozen", raising=False)
    proc = subprocess.run(worker_argv(["train", "sr", "--help"]), capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "--data" in proc.stdout


# ----------------------------------------------------------------------------- the spec
def _arch_modules() -> set[str]:
    from restorer.engine.archs import ARCHS

    return {module for module, _cls in ARCHS.values()}


def test_spec_is_valid_python():
    ast.parse(SPEC.read_text(encoding="utf-8"))


def test_spec_bundles_resources_where_the_registry_looks():
    text = SPEC.read_text(encoding="utf-8")
    assert '"resources/icons"' in text
    assert '"resources/weights"' in text
    assert '"*.pt"' in text and '"manifest.json"' in text
    # the frozen lookup it relies on: sys._MEIPASS/resources
    paths_src = (ROOT / "restorer" / "engine" / "paths.py").read_text(encoding="utf-8")  # registry re-exports it
    assert '_MEIPASS' in paths_src and '"resources"' in paths_src


def test_spec_lists_every_arch_module_as_hidden_import():
    tree = ast.parse(SPEC.read_text(encoding="utf-8"))
    listed = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "ARCH_MODULES"
                                                for t in node.targets):
            listed = set(ast.literal_eval(node.value))
    assert listed is not None, "ARCH_MODULES not found in the spec"
    missing = _arch_modules() - listed
    assert not missing, f"ARCHS modules missing from the spec's hidden imports: {sorted(missing)}"
    for module in listed:  # and each really exists
        assert importlib.util.find_spec(module) is not None, module


def test_spec_excludes_unused_heavy_packages_and_keeps_torch_core():
    text = SPEC.read_text(encoding="utf-8")
    for name in ("tkinter", "matplotlib", "IPython", "pytest", "triton"):
        assert f'"{name}"' in text
    excludes_block = text.split("EXCLUDES = [", 1)[1].split("]", 1)[0]
    for needed in ('"torch.distributed"', '"torch.testing"', '"torchvision"'):
        assert needed not in excludes_block  # `import torch` needs the first two


def test_packaging_files_exist_and_icon_is_sane():
    from PIL import Image

    for rel in ("packaging/build.sh", "packaging/restorer_main.py", "packaging/restorer.desktop",
                "packaging/README.md", "resources/icons/restorer.png", "resources/icons/restorer.ico"):
        assert (ROOT / rel).is_file(), rel
    assert os.access(ROOT / "packaging" / "build.sh", os.X_OK)
    with Image.open(ROOT / "resources" / "icons" / "restorer.png") as im:
        assert im.size == (256, 256) and im.mode == "RGBA"
    with Image.open(ROOT / "resources" / "icons" / "restorer.ico") as ico:
        assert (256, 256) in ico.info["sizes"] and (16, 16) in ico.info["sizes"]
    desktop = (ROOT / "packaging" / "restorer.desktop").read_text(encoding="utf-8")
    assert desktop.startswith("[Desktop Entry]")
    for key in ("Type=Application", "Name=Restorer", "Exec=", "Icon=restorer", "Terminal=false"):
        assert key in desktop


def test_build_outputs_stay_git_ignored():
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "build/" in ignored and "dist/" in ignored


# ----------------------------------------------------------------------------- --self-test
def test_self_test_from_source_exits_0():
    env = dict(os.environ)
    env.pop("RESTORER_SCREENSHOT", None)
    env["QT_QPA_PLATFORM"] = "offscreen"
    proc = subprocess.run([sys.executable, "-m", "restorer", "--self-test"], capture_output=True, text=True,
                          timeout=600, cwd=ROOT, env=env)
    out = proc.stdout
    inpaint_available = importlib.util.find_spec("restorer.engine.pipelines.inpaint") is not None
    if not inpaint_available:  # the self-test must say so clearly, and fail
        assert proc.returncode == 1, out
        assert "FAIL inpaint" in out and "not importable" in out
        pytest.skip("restorer.engine.pipelines.inpaint is not in this checkout yet")
    assert proc.returncode == 0, out + proc.stderr
    for check in ("resources", "upscale", "inpaint", "qt", "worker"):
        assert f"PASS {check}:" in out, out
    assert "torchvision:" in out and "FAIL" not in out
    assert "byte-identical" in out
    assert "self-test passed" in out.splitlines()[-1]


def test_self_test_reports_a_failing_check(monkeypatch, capsys):
    from restorer import selftest

    def broken() -> str:
        raise RuntimeError("simulated breakage")

    monkeypatch.setattr(selftest, "check_upscale", broken)
    for name in ("check_inpaint", "check_torchvision", "check_qt", "check_worker"):
        monkeypatch.setattr(selftest, name, lambda: "skipped in this test")
    monkeypatch.delenv("RESTORER_SCREENSHOT", raising=False)
    lines: list[str] = []
    assert selftest.run(lines.append) == 1
    assert any(line.startswith("FAIL upscale:") and "simulated breakage" in line for line in lines)
    assert "FAILED" in lines[-1] and "upscale" in lines[-1]
