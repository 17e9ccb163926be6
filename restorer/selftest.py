"""`restorer --self-test`: prove that this install (a source checkout or a frozen bundle) works.

Runs headless, in a few seconds, with no files of the user's touched::

    python -m restorer --self-test          # from source
    dist/Restorer/Restorer --self-test      # the PyInstaller bundle

It prints one line per check (``PASS``/``FAIL``/``INFO``) and returns 0 only when every check
passed. The checks:

* ``resources``: the ``resources/`` folder is found (inside the bundle when frozen) with the icon;
* ``upscale``: a small synthetic image (numpy) through the upscale pipeline with the default
  *shipped* SR model or, when no model is shipped, a tiny randomly initialised ``compact_sr``
  network built by ``restorer.engine.archs.build_arch``; output size and dtype are checked;
* ``inpaint``: a synthetic image with a damaged rectangle through
  ``restorer.engine.pipelines.inpaint.inpaint_image`` with the shipped inpaint model or a tiny
  random ``deepfill`` network (same rule); size, dtype, that every pixel outside the mask is
  byte-identical and that the hole was filled;
* ``archs``: every architecture of ``restorer.engine.archs.ARCHS`` imports (they are loaded with
  importlib, so a hidden import missing from the bundle shows here), also those no shipped model uses;
* ``detect``: a small grey synthetic photo with drawn scratches through
  ``restorer.engine.pipelines.detect.detect_damage`` with the shipped ``damage_unet`` (or a tiny random
  one); the mask must be a bool array of the photo's size and, with the shipped model, find most of the
  scratch while marking almost nothing else;
* ``clean``: a noisy synthetic photo through ``pipelines.clean.clean_image`` with the shipped x1 clean-up
  model (or a tiny random x1 ``compact_sr``) at the default precision (bf16 on CPUs that have it): same
  size and dtype, some pixels changed, and with the shipped model no more than a mild change;
* ``colorize``: a grey synthetic photo through ``pipelines.colorize.colorize_photo`` with the shipped
  colorize model (or a tiny random ``colorize_unet``): an RGB colour image of the same size whose CIE L
  equals the input's up to rounding;
* ``restore``: the one-step old-photo restore (``pipelines.restore``: plan, then detect, fill, clean,
  x2 upscale, colorize) on a small grey scratched photo with the shipped models (a tiny random network
  for any step without one): every step runs, pixels outside the filled mask survive the fill, the
  result is twice the size and in colour, and the source is not modified;
* ``torchvision``: its compiled ops load and a JPEG round trip works (SR training needs it);
  an INFO line instead when it is not installed at all;
* ``qt``: the desktop app's modules import (no window is opened);
* ``worker``: the training worker command (``restorer.engine.worker_command.worker_argv``) starts
  and answers ``train sr --help``; frozen, that is the bundled executable, never a system Python.

With ``RESTORER_SCREENSHOT=/path/shot.png`` in the environment it also opens the real desktop
app (``restorer.app.main_window.run_app``; needs a display, e.g. ``xvfb-run``, or
``QT_QPA_PLATFORM=offscreen``), reports how long after process start the window was shown,
saves ``window.grab()`` there after ``RESTORER_SCREENSHOT_DELAY`` seconds (default 3) and quits.
``RESTORER_SELFTEST_ONLY=gui`` (a comma-separated list of check names) runs only those checks,
e.g. to time the app's start-up on its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import traceback
from typing import Callable, Optional

import numpy as np

_T0 = time.perf_counter()

PASS, FAIL, INFO = "PASS", "FAIL", "INFO"


def process_age() -> float:
    """Seconds since this process started (Linux: from /proc; elsewhere: since this module loaded)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        start = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - start)
    except (OSError, ValueError, IndexError, AttributeError):
        return time.perf_counter() - _T0


class _NotInstalled(Exception):
    """An optional component is absent: reported as INFO, not a failure."""


class _Report:
    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self.failed: list[str] = []
        self.passed = 0

    def line(self, status: str, name: str, text: str) -> None:
        if status == FAIL:
            self.failed.append(name)
        elif status == PASS:
            self.passed += 1
        self.write(f"{status} {name}: {text}")

    def check(self, name: str, fn: Callable[[], str]) -> None:
        """Run one check: it returns a description when right and raises when wrong."""
        t = time.perf_counter()
        try:
            text = fn()
        except _NotInstalled as exc:
            self.line(INFO, name, str(exc))
            return
        except Exception as exc:  # a failed check is a line, never a crash
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self.line(FAIL, name, detail)
            if os.environ.get("RESTORER_SELFTEST_TRACEBACK"):
                traceback.print_exc()
            return
        self.line(PASS, name, f"{text} ({time.perf_counter() - t:.2f} s)")


# ----------------------------------------------------------------------------- synthetic data
def synthetic_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A deterministic uint8 RGB test picture: gradients, a disc, stripes and a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 255 * x / max(1, w - 1)
    g = 255 * y / max(1, h - 1)
    b = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 5.0)
    img = np.stack([r, g, b], axis=-1)
    disc = (x - w * 0.6) ** 2 + (y - h * 0.4) ** 2 < (min(h, w) * 0.2) ** 2
    img[disc] = (240, 220, 40)
    img += rng.normal(0, 4, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _shipped_spec(task: str, scale: Optional[int] = None):
    """The default shipped model of a task (and SR factor), or None when the app ships none."""
    from restorer.engine import registry

    specs = [s for s in registry.SHIPPED if s.task == task and (scale is None or s.scale == scale)]
    defaults = [s for s in specs if s.provenance.get("default")]
    return (defaults or specs)[0] if specs else None


#: the tiny random network each old-photo check falls back to when no model of its task is shipped
TINY = {
    "detect": ("damage_unet", {"base_channels": 4, "levels": 2, "head_channels": 4}),
    "inpaint": ("deepfill", {"base_channels": 8}),
    "clean": ("compact_sr", {"scale": 1, "num_convs": 2, "channels": 8, "unshuffle": 2}),
    "upscale": ("compact_sr", {"scale": 2, "num_convs": 2, "channels": 8}),
    "colorize": ("colorize_unet", {"base_channels": 4, "depth": 3}),
}
_TASKS = {"detect": ("detect", None), "inpaint": ("inpaint", None), "clean": ("sr", 1), "upscale": ("sr", 2),
          "colorize": ("colorize", None)}


_LOADED: dict = {}  # spec id -> network: each shipped model is read (and its sha256 checked) once per run


def _load(spec):
    from restorer.engine import registry

    if spec.id not in _LOADED:
        _LOADED[spec.id] = registry.load_model(spec)
    return _LOADED[spec.id]


def _model_for(role: str):
    """(spec, network, description) for a role of TINY: the shipped model, else a tiny random network
    built by build_arch, whose spec is made up here (source "selftest", never saved)."""
    import torch

    from restorer.engine import registry
    from restorer.engine.archs import build_arch

    task, scale = _TASKS[role]
    spec = _shipped_spec(task, scale)
    if spec is not None:
        return spec, _load(spec), f"shipped model '{spec.id}'"
    arch, params = TINY[role]
    torch.manual_seed(0)
    net = build_arch(arch, params).eval()
    spec = registry.ModelSpec(id=f"selftest-tiny-{role}", task=task, arch=arch, params=params, file="",
                              scale=int(params.get("scale", 1)), source="selftest")
    return spec, net, f"no shipped {role} model: tiny random {arch} via build_arch"


def scratched_photo(h: int, w: int, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A grey (three equal channels) uint8 synthetic photo with two near-white scratches drawn on it
    (a diagonal about 3.5 px wide and a horizontal one 2 px high), and the (H, W) bool mask of the
    scratch pixels. (The shipped detector's recall on thin lines depends on where they fall on its
    2x2 pixel-unshuffle grid; these, at 64x96, are found at about 98%.)"""
    grey = synthetic_image(h, w, seed=seed).mean(axis=2).astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    y, x = np.mgrid[0:h, 0:w]
    scratch = np.abs(y - (0.5 * x + h * 0.1875)) < 2.0
    row = 2 * (h * 5 // 32)
    scratch[row:row + 2, int(w * 0.1):int(w * 0.85)] = True
    rgb[scratch] = 250
    return rgb, scratch


# ----------------------------------------------------------------------------- checks
def check_resources() -> str:
    from restorer.engine.registry import resources_dir, weights_dir

    res = resources_dir()
    if not res.is_dir():
        raise RuntimeError(f"resources folder not found (looked for {res})")
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass and os.path.realpath(res.parent) != os.path.realpath(meipass):
        raise RuntimeError(f"frozen, but resources came from {res}, not from the bundle {meipass}")
    icon = res / "icons" / "restorer.png"
    if not icon.is_file():
        raise RuntimeError(f"app icon {icon} is missing")
    weights = sorted(p.name for p in weights_dir().glob("*.pt")) if weights_dir().is_dir() else []
    return f"{res} (icon ok, {len(weights)} weight file(s))"


def check_upscale() -> str:
    import torch

    from restorer.engine import registry
    from restorer.engine.archs import build_arch
    from restorer.engine.imageio import ImageData
    from restorer.engine.pipelines.upscale import SCALES, upscale_image

    spec = _shipped_spec("sr")
    if spec is not None:
        model, model_scale = _load(spec), int(spec.scale)
        which = f"shipped model '{spec.id}' (x{model_scale})"
    else:
        torch.manual_seed(0)
        model_scale = 2
        model = build_arch("compact_sr", {"scale": model_scale, "num_convs": 2, "channels": 8}).eval()
        which = f"no shipped SR model: tiny random compact_sr x{model_scale} via build_arch"
    scale = model_scale if model_scale in SCALES else max(s for s in SCALES if s <= model_scale)
    h, w = 40, 52
    src = synthetic_image(h, w, seed=1)
    result = upscale_image(ImageData(rgb=src.copy()), model, model_scale, scale, device=torch.device("cpu"))
    out = result.image.rgb
    want = (h * scale, w * scale, 3)
    if out.shape != want:
        raise AssertionError(f"output shape {out.shape}, expected {want}")
    if out.dtype != np.uint8:
        raise AssertionError(f"output dtype {out.dtype}, expected uint8")
    if result.image.alpha is not None:
        raise AssertionError("an opaque input came back with alpha")
    return f"{which}: {w}x{h} -> {out.shape[1]}x{out.shape[0]} uint8, {result.tiles} tile(s)"


def check_inpaint() -> str:
    import torch

    try:
        from restorer.engine.pipelines.inpaint import inpaint_image
    except ImportError as exc:
        raise RuntimeError(f"restorer.engine.pipelines.inpaint is not importable yet ({exc})") from exc
    from restorer.engine import registry
    from restorer.engine.archs import build_arch

    spec = _shipped_spec("inpaint")
    if spec is not None:
        model = _load(spec)
        which = f"shipped model '{spec.id}'"
    else:
        torch.manual_seed(0)
        model = build_arch("deepfill", {"base_channels": 8}).eval()
        which = "no shipped inpaint model: tiny random deepfill via build_arch"
    h, w = 64, 80
    src = synthetic_image(h, w, seed=2)
    mask = np.zeros((h, w), dtype=bool)
    mask[20:38, 24:50] = True
    damaged = src.copy()
    damaged[mask] = (255, 0, 255)  # the damage: must never leak into the result
    out = inpaint_image(damaged.copy(), mask, model, device=torch.device("cpu"))
    if not isinstance(out, np.ndarray) or out.shape != src.shape:
        raise AssertionError(f"output shape {getattr(out, 'shape', type(out))}, expected {src.shape}")
    if out.dtype != np.uint8:
        raise AssertionError(f"output dtype {out.dtype}, expected uint8")
    if not np.array_equal(out[~mask], damaged[~mask]):
        changed = int(np.count_nonzero(np.any(out != damaged, axis=-1) & ~mask))
        raise AssertionError(f"{changed} pixel(s) outside the mask changed")
    still_damaged = int(np.count_nonzero(np.all(out[mask] == (255, 0, 255), axis=-1)))
    if still_damaged:
        raise AssertionError(f"{still_damaged} of {int(mask.sum())} hole pixel(s) still hold the damage colour")
    return (f"{which}: {w}x{h} uint8, {int(mask.sum())} px hole filled, "
            f"{int((~mask).sum())} px outside the mask byte-identical")


def check_archs() -> str:
    """Every architecture in ARCHS imports (importlib: the module graph cannot see them)."""
    import importlib

    from restorer.engine.archs import ARCHS

    missing = []
    for name, (module, cls) in sorted(ARCHS.items()):
        try:
            getattr(importlib.import_module(module), cls)
        except Exception as exc:  # ImportError, AttributeError: both mean a broken app
            missing.append(f"{name} ({module}.{cls}: {exc})")
    if missing:
        raise RuntimeError(f"{len(missing)} of {len(ARCHS)} architecture(s) do not import: {'; '.join(missing)}")
    return f"{len(ARCHS)} architectures import: {', '.join(sorted(ARCHS))}"


def check_detect() -> str:
    import torch

    from restorer.engine.pipelines.detect import detect_damage

    spec, model, which = _model_for("detect")
    h, w = 64, 96
    rgb, scratch = scratched_photo(h, w)
    found = detect_damage(rgb.copy(), model, device=torch.device("cpu"))
    mask = found.mask
    if not isinstance(mask, np.ndarray) or mask.shape != (h, w) or mask.dtype != bool:
        raise AssertionError(f"mask {getattr(mask, 'shape', type(mask))} {getattr(mask, 'dtype', '')}, "
                             f"expected ({h}, {w}) bool")
    prob = found.probability
    if prob.shape != (h, w) or not (np.isfinite(prob).all() and prob.min() >= 0.0 and prob.max() <= 1.0):
        raise AssertionError("the damage probability is not a finite (H, W) map in [0, 1]")
    hit = float((mask & scratch).sum() / scratch.sum())
    false = float((mask & ~scratch).sum() / (~scratch).sum())
    if spec.source == "shipped":  # a real detector must find the drawn scratches and little else
        if hit < 0.6:
            raise AssertionError(f"only {hit:.0%} of the scratch pixels marked (expected at least 60%)")
        if false > 0.02:
            raise AssertionError(f"{false:.1%} of the undamaged pixels marked (expected at most 2%)")
    return (f"{which}: {w}x{h} -> ({h}, {w}) bool mask, {hit:.0%} of the scratch marked, "
            f"{false:.1%} of the rest (threshold {found.threshold:.2f})")


def check_clean() -> str:
    import torch

    from restorer.engine.devices import resolve_precision
    from restorer.engine.imageio import ImageData
    from restorer.engine.pipelines.clean import clean_image

    spec, model, which = _model_for("clean")
    h, w = 64, 96
    rng = np.random.default_rng(5)
    src = np.clip(synthetic_image(h, w, seed=5) + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    cpu = torch.device("cpu")
    out = clean_image(ImageData(rgb=src.copy()), model, device=cpu).rgb
    if out.shape != src.shape or out.dtype != np.uint8:
        raise AssertionError(f"output {out.shape} {out.dtype}, expected {src.shape} uint8")
    changed = int(np.count_nonzero(np.any(out != src, axis=-1)))
    if not changed:
        raise AssertionError("no pixel changed")
    diff = float(np.abs(out.astype(np.int16) - src.astype(np.int16)).mean())
    if spec.source == "shipped" and diff > 10:
        raise AssertionError(f"mean change {diff:.1f} levels: far more than a clean-up (broken weights?)")
    if not np.array_equal(clean_image(ImageData(rgb=src.copy()), model, strength=0.0, device=cpu).rgb, src):
        raise AssertionError("strength 0 did not give the input back")
    dtype = str(resolve_precision(cpu, "auto")).replace("torch.", "")
    return (f"{which} ({dtype}): {w}x{h} -> {out.shape[1]}x{out.shape[0]} uint8, {changed} of {h * w} px changed "
            f"(mean {diff:.2f} levels); strength 0 gives the input back")


def check_colorize() -> str:
    import torch

    from restorer.engine.imageio import ImageData
    from restorer.engine.pipelines.colorize import colorize_photo, luminance

    spec, model, which = _model_for("colorize")
    h, w = 64, 96
    grey = np.repeat(synthetic_image(h, w, seed=6).mean(axis=2).astype(np.uint8)[:, :, None], 3, axis=2)
    out = colorize_photo(ImageData(rgb=grey.copy(), gray=True), model, device=torch.device("cpu"))
    rgb = out.rgb
    if rgb.shape != (h, w, 3) or rgb.dtype != np.uint8:
        raise AssertionError(f"output {rgb.shape} {rgb.dtype}, expected ({h}, {w}, 3) uint8")
    if out.gray:
        raise AssertionError("the colorized photo is still marked grey")
    coloured = float(np.mean((rgb.max(axis=-1).astype(np.int16) - rgb.min(axis=-1)) >= 2))
    if coloured < 0.5:
        raise AssertionError(f"only {coloured:.0%} of the pixels got any colour")
    dl = float((luminance(rgb) - luminance(grey)).abs().max())
    if dl > 1.0:  # CIE L is 0..100; rounding to 8 bits moves it by well under 1
        raise AssertionError(f"the luminance changed by up to {dl:.2f} (CIE L), expected < 1")
    return (f"{which}: {w}x{h} grey -> RGB, {coloured:.0%} of the pixels coloured, "
            f"luminance kept (max CIE L change {dl:.2f})")


def check_restore() -> str:
    import torch

    from restorer.engine.imageio import ImageData
    from restorer.engine.pipelines import restore as rp

    roles = {"detect": "detect", "fill": "inpaint", "clean": "clean", "upscale": "upscale", "colorize": "colorize"}
    models, specs, tiny = {}, {}, []
    for step, role in roles.items():
        spec, net, _which = _model_for(role)
        specs[step] = spec
        if spec.source != "shipped":
            models[spec.id] = net
            tiny.append(step)
    shipped = {step: spec.id for step, spec in specs.items() if spec.source == "shipped"}
    options = rp.RestoreOptions(scale=2, colorize=True, detect_model=shipped.get("detect"),
                                inpaint_model=shipped.get("fill"), clean_model=shipped.get("clean"),
                                upscale_model=shipped.get("upscale"), colorize_model=shipped.get("colorize"))
    h, w = 64, 96
    rgb, scratch = scratched_photo(h, w, seed=7)
    image = ImageData(rgb=rgb.copy(), gray=True)
    plans = [p if p.step in shipped else rp.StepPlan(p.step, True, "", specs[p.step])
             for p in rp.plan_restore(image, options)]
    not_run = [f"{p.step} ({p.note})" for p in plans if not p.run]
    if not_run:
        raise AssertionError(f"planned without: {', '.join(not_run)}")

    def load(spec):
        return models[spec.id] if spec.id in models else _load(spec)

    result = rp.restore_photo(image, options, device=torch.device("cpu"), loader=load, plans=plans)
    ran = [s.step for s in result.steps if s.ran]
    if ran != list(rp.STEPS):
        skipped = [f"{s.step} ({s.note})" for s in result.steps if not s.ran]
        raise AssertionError(f"steps run: {ran}; skipped: {', '.join(skipped)}")
    if not np.array_equal(image.rgb, rgb):
        raise AssertionError("the source photo was modified")
    mask = result.mask
    if mask is None or mask.shape != (h, w) or not mask.any():
        raise AssertionError(f"fill mask {None if mask is None else mask.shape}, expected a non-empty ({h}, {w})")
    filled = result.step("fill").image.rgb
    if not np.array_equal(filled[~mask], rgb[~mask]):
        raise AssertionError("the fill changed pixels outside its mask")
    out = result.image
    if out.rgb.shape != (2 * h, 2 * w, 3) or out.rgb.dtype != np.uint8:
        raise AssertionError(f"result {out.rgb.shape} {out.rgb.dtype}, expected ({2 * h}, {2 * w}, 3) uint8")
    if out.gray or np.array_equal(out.rgb[..., 0], out.rgb[..., 2]):
        raise AssertionError("the result is not in colour")
    before, after = float(rgb[scratch].mean()), float(filled[scratch].mean())
    if "detect" not in tiny and "fill" not in tiny and after > before - 40:
        raise AssertionError(f"the scratches are still there (mean {after:.0f} after the fill, {before:.0f} before)")
    models_used = ", ".join(f"{s.step} {s.model_id}" for s in result.steps)
    return (f"{w}x{h} grey scratched photo -> {2 * w}x{2 * h} colour; {_pct(mask.mean())} filled, scratch mean "
            f"{before:.0f} -> {after:.0f}; models: {models_used}")


def _pct(fraction: float) -> str:
    return f"{100 * float(fraction):.1f}%"


def check_torchvision() -> str:
    """torchvision is needed only by SR training (JPEG degradation, perceptual loss): when it is
    absent (the CPU-only bundle may leave it out) that is an INFO line; present but broken fails."""
    import importlib.util

    import torch

    if importlib.util.find_spec("torchvision") is None:
        raise _NotInstalled("torchvision is not installed: SR training with --degradation realistic "
                            "and the GAN phase's perceptual loss are unavailable")
    import torchvision
    from torchvision.io import decode_jpeg, encode_jpeg

    img = torch.from_numpy(synthetic_image(32, 40, seed=3)).permute(2, 0, 1).contiguous()
    back = decode_jpeg(encode_jpeg(img, quality=90))
    if tuple(back.shape) != tuple(img.shape) or back.dtype != torch.uint8:
        raise AssertionError(f"JPEG round trip gave {tuple(back.shape)} {back.dtype}")
    err = (back.float() - img.float()).abs().mean().item()
    if err > 20:
        raise AssertionError(f"JPEG round trip error {err:.1f} is too large")
    return f"torchvision {torchvision.__version__}: ops load, JPEG round trip (mean error {err:.1f})"


def check_qt() -> str:
    import PySide6
    from PySide6 import QtCore, QtGui, QtWidgets  # noqa: F401

    import restorer.app.main_window  # noqa: F401

    return f"PySide6 {PySide6.__version__} (Qt {QtCore.qVersion()}) and restorer.app.main_window import"


def check_worker() -> str:
    from restorer.engine.worker_command import is_frozen, worker_argv

    argv = worker_argv(["train", "sr", "--help"])
    env = dict(os.environ)
    env.pop("RESTORER_SCREENSHOT", None)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          timeout=300, env=env)
    text = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0 or "--data" not in text:
        raise RuntimeError(f"{argv} exited {proc.returncode}: {text.strip()[-300:]}")
    if is_frozen() and os.path.realpath(argv[0]) != os.path.realpath(sys.executable):
        raise AssertionError(f"frozen, but the worker would be {argv[0]}")
    kind = "bundled executable" if is_frozen() else "this Python, -m restorer"
    return f"{' '.join(argv[:-3] or argv)} ({kind}) answers 'train sr --help'"


def check_gui(path: str, delay: float) -> str:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from restorer.app.main_window import run_app

    app = QApplication.instance() or QApplication(sys.argv[:1])
    state: dict = {}

    def poll() -> None:
        win = getattr(app, "_restorer_window", None)
        handle = win.windowHandle() if win is not None else None
        if win is None or not win.isVisible() or (handle is not None and not handle.isExposed()):
            QTimer.singleShot(10, poll)
            return
        state["shown"] = process_age()
        state["win"] = win
        QTimer.singleShot(int(delay * 1000), shoot)

    def shoot() -> None:
        win = state["win"]
        pix = win.grab()
        state["size"] = (pix.width(), pix.height())
        state["saved"] = pix.save(path)
        state["title"] = win.windowTitle()
        win.close()
        app.quit()

    QTimer.singleShot(0, poll)
    QTimer.singleShot(int((delay + 120) * 1000), app.quit)  # never hang a self-test
    run_app(None)
    if "shown" not in state:
        raise RuntimeError("the main window was never shown")
    if not state.get("saved"):
        raise RuntimeError(f"could not save the screenshot to {path}")
    w, h = state["size"]
    return (f"window '{state['title']}' shown {state['shown']:.2f} s after process start; "
            f"{w}x{h} screenshot saved to {path}")


# ----------------------------------------------------------------------------- entry
#: the checks that need torch (the torch line is printed before them)
TORCH_CHECKS = frozenset({"upscale", "inpaint", "archs", "detect", "clean", "colorize", "restore", "torchvision"})


def run(write: Optional[Callable[[str], None]] = None) -> int:
    """Run every check, print one line each; 0 when all passed, else 1."""
    if write is None:
        def write(text: str) -> None:
            print(text, flush=True)

    rep = _Report(write)
    _LOADED.clear()
    from restorer import __version__

    frozen = bool(getattr(sys, "frozen", False))
    where = f"frozen bundle {getattr(sys, '_MEIPASS', '?')}" if frozen else f"source, Python {sys.version.split()[0]}"
    rep.line(INFO, "restorer", f"{__version__} ({where}); executable {sys.executable}")
    only = {name.strip() for name in os.environ.get("RESTORER_SELFTEST_ONLY", "").split(",") if name.strip()}
    if not only or only & TORCH_CHECKS:  # else leave torch to the selected checks (timing)
        try:
            import torch
        except Exception as exc:
            rep.line(FAIL, "torch", f"import failed: {exc}")
            write(f"self-test FAILED ({process_age():.2f} s): torch")
            return 1
        build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
        rep.line(INFO, "torch", f"{torch.__version__} ({build}); CUDA available: {torch.cuda.is_available()}; "
                                f"checks run on cpu with {torch.get_num_threads()} thread(s)")
    checks: list[tuple[str, Callable[[], str]]] = [
        ("resources", check_resources), ("upscale", check_upscale), ("inpaint", check_inpaint),
        ("archs", check_archs), ("detect", check_detect), ("clean", check_clean), ("colorize", check_colorize),
        ("restore", check_restore), ("torchvision", check_torchvision), ("qt", check_qt), ("worker", check_worker)]
    shot = os.environ.get("RESTORER_SCREENSHOT")
    if shot:
        delay = float(os.environ.get("RESTORER_SCREENSHOT_DELAY", "3"))
        checks.append(("gui", lambda: check_gui(shot, delay)))
    unknown = only - {name for name, _ in checks}
    if unknown:
        rep.line(FAIL, "selftest", f"unknown check(s) in RESTORER_SELFTEST_ONLY: {', '.join(sorted(unknown))}")
    for name, fn in checks:
        if not only or name in only:
            rep.check(name, fn)
    total = f"{process_age():.2f} s since process start"
    if rep.failed:
        write(f"self-test FAILED ({total}): {', '.join(rep.failed)}")
        return 1
    write(f"self-test passed: {rep.passed} checks ({total})")
    return 0
