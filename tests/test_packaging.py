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
    for check in ("resources", "upscale", "inpaint", "archs", "detect", "clean", "colorize", "restore", "qt",
                  "worker"):
        assert f"PASS {check}:" in out, out
    for model in ("detect-damage", "restore-x1", "colorize-photos", "inpaint-photos", "sr-x2-faithful"):
        assert f"shipped model '{model}'" in out or f" {model}" in out, (model, out)  # the real weights ran
    assert "torchvision:" in out and "FAIL" not in out
    assert "byte-identical" in out
    assert "self-test passed" in out.splitlines()[-1]


def test_self_test_reports_a_failing_check(monkeypatch, capsys):
    from restorer import selftest

    def broken() -> str:
        raise RuntimeError("simulated breakage")

    monkeypatch.setattr(selftest, "check_upscale", broken)
    for name in ("check_inpaint", "check_archs", "check_detect", "check_clean", "check_colorize", "check_restore",
                 "check_torchvision", "check_qt", "check_worker"):
        monkeypatch.setattr(selftest, name, lambda: "skipped in this test")
    monkeypatch.delenv("RESTORER_SCREENSHOT", raising=False)
    lines: list[str] = []
    assert selftest.run(lines.append) == 1
    assert any(line.startswith("FAIL upscale:") and "simulated breakage" in line for line in lines)
    assert "FAILED" in lines[-1] and "upscale" in lines[-1]


# ----------------------------------------------------------------------------- the old-photo checks
OLD_PHOTO_CHECKS = ("check_detect", "check_clean", "check_colorize", "check_restore")


@pytest.mark.parametrize("name", OLD_PHOTO_CHECKS)
def test_old_photo_checks_fall_back_to_tiny_random_networks(name, no_shipped_models):
    from restorer import selftest

    text = getattr(selftest, name)()
    if name == "check_restore":
        assert "selftest-tiny-detect" in text and "selftest-tiny-colorize" in text, text
    else:
        assert "tiny random" in text and "via build_arch" in text, text


def test_restore_check_uses_tiny_networks_only_for_the_steps_without_a_shipped_model(monkeypatch):
    from restorer import selftest
    from restorer.engine import registry

    monkeypatch.setattr(registry, "SHIPPED", tuple(s for s in registry.SHIPPED if s.task != "colorize"))
    text = selftest.check_restore()
    assert "colorize selftest-tiny-colorize" in text and "detect detect-damage" in text, text


def test_every_check_is_run_by_the_self_test(monkeypatch):
    """A check_* function the run() list forgets would never run in the bundle."""
    from restorer import selftest

    names = [n[len("check_"):] for n in dir(selftest) if n.startswith("check_") and n != "check_gui"]
    assert {"detect", "clean", "colorize", "restore", "archs"} <= set(names)
    monkeypatch.delenv("RESTORER_SCREENSHOT", raising=False)
    monkeypatch.delenv("RESTORER_SELFTEST_ONLY", raising=False)
    for n in names:
        monkeypatch.setattr(selftest, f"check_{n}", lambda n=n: f"stub {n}")
    lines: list[str] = []
    assert selftest.run(lines.append) == 0
    for n in names:
        assert any(line.startswith(f"PASS {n}: stub {n}") for line in lines), (n, lines)


def test_archs_check_fails_on_an_architecture_that_does_not_import(monkeypatch):
    from restorer import selftest
    from restorer.engine import archs

    monkeypatch.setitem(archs.ARCHS, "ghost", ("restorer.engine.archs.not_bundled", "Ghost"))
    with pytest.raises(RuntimeError, match="ghost"):
        selftest.check_archs()


def test_detect_check_fails_on_a_wrong_mask(monkeypatch):
    from restorer import selftest
    from restorer.engine.pipelines import detect

    real = detect.detect_damage

    def half_size(*args, **kwargs):
        found = real(*args, **kwargs)
        return detect.DetectResult(found.mask[::2], found.probability, found.threshold, found.work_scale)

    monkeypatch.setattr(detect, "detect_damage", half_size)
    with pytest.raises(AssertionError, match="mask"):
        selftest.check_detect()


def test_detect_check_fails_when_the_shipped_detector_finds_nothing(monkeypatch):
    """Broken weights (here: all zero) still give a mask of the right shape; the check must notice."""
    import torch

    from restorer import selftest

    real = selftest._model_for

    def zeroed(role):
        spec, net, which = real(role)
        with torch.no_grad():
            for p in net.parameters():
                p.zero_()
        return spec, net, which

    monkeypatch.setattr(selftest, "_model_for", zeroed)
    with pytest.raises(AssertionError, match="scratch pixels marked"):
        selftest.check_detect()


@pytest.mark.parametrize("module, function, check, match", [
    ("clean", "clean_image", "check_clean", "no pixel changed"),  # a clean-up that changes nothing
    ("colorize", "colorize_photo", "check_colorize", "grey|colour"),  # a colorizer that leaves the photo grey
])
def test_check_fails_when_the_pipeline_returns_its_input(monkeypatch, module, function, check, match):
    import importlib

    from restorer import selftest

    pipeline = importlib.import_module(f"restorer.engine.pipelines.{module}")
    monkeypatch.setattr(pipeline, function, lambda image, model, **kw: image)
    with pytest.raises(AssertionError, match=match):
        getattr(selftest, check)()


def test_colorize_check_fails_when_the_luminance_moves(monkeypatch):
    from dataclasses import replace

    import numpy as np

    from restorer import selftest
    from restorer.engine.pipelines import colorize

    real = colorize.colorize_photo

    def darker(image, model, **kwargs):
        out = real(image, model, **kwargs)
        return replace(out, rgb=(out.rgb // 2).astype(np.uint8))

    monkeypatch.setattr(colorize, "colorize_photo", darker)
    with pytest.raises(AssertionError, match="luminance"):
        selftest.check_colorize()


def test_restore_check_fails_when_a_step_is_skipped(monkeypatch):
    from restorer import selftest
    from restorer.engine.pipelines import restore as rp

    monkeypatch.setattr(rp, "is_monochrome", lambda image, *a, **k: False)  # so colorize is skipped
    with pytest.raises(AssertionError, match="colorize"):
        selftest.check_restore()


def _spec_function(name: str):
    """A top-level function of the spec, compiled on its own (the spec needs PyInstaller to run whole)."""
    tree = ast.parse(SPEC.read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    namespace: dict = {"Path": Path}
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(SPEC), "exec"), namespace)
    return namespace[name]


def test_spec_refuses_torch_from_outside_the_build_pythons_site_packages(monkeypatch, tmp_path):
    """Built from an environment that only borrows torch (a .pth to another venv), PyInstaller copies torch's
    libraries twice (5.6 GB instead of 4.2 GB, 2026-12-02); the spec must refuse, and accept a normal venv."""
    import site

    outside = _spec_function("_outside_site_packages")
    assert outside() == []  # this venv: torch and PySide6 are in its site-packages
    monkeypatch.setattr(site, "getsitepackages", lambda: [str(tmp_path)])
    assert [entry.split(" ")[0] for entry in outside()] == ["torch", "PySide6"]
    assert "raise SystemExit" in SPEC.read_text(encoding="utf-8").split("_outside = _outside_site_packages()", 1)[1][:200]


# ----------------------------------------------------------------------------- start-up
def test_commands_that_need_no_network_start_without_importing_torch():
    """`restorer --version`, `models` and `--help` took 4 s in the bundle (0.4 s before) once the train
    options came from the config dataclasses, whose modules import torch: the train task parsers are
    completed only when used. Parsing a train command still gives every option."""
    code = ("import sys\n"
            "from restorer import cli\n"
            "p = cli.build_parser()\n"
            "p.parse_args(['models'])\n"
            "p.format_help()\n"
            "p.parse_args(['upscale', 'photo.jpg', '--scale', '2'])\n"
            "print('torch' in sys.modules)\n"
            "ns = p.parse_args(['train', 'colorize', '--data', 'a', '--data', 'b', '--name', 'n', '--depth', '6'])\n"
            "print(ns.func.__name__, ns.data, ns.depth, ns.events, ns.resume)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["False", "cmd_train ['a', 'b'] 6 log False"], proc.stdout
