"""One-step restore of an old photo (issue #19): detect damage, fill it, clean up, upscale, colorize.

The steps run in this order, each one optional:

1. **detect** the scratches, dust and stains (`pipelines/detect.py`); what it finds is joined to the
   mask the caller already has (the app's painted mask), giving the mask to fill;
2. **fill** that mask (`pipelines/inpaint.py`); skipped with a note when the mask is empty;
3. **clean** up noise, grain and JPEG blocks with a x1 model (`pipelines/clean.py`); skipped with a
   note when no clean-up model is installed;
4. **upscale** x2 or x4 (`pipelines/upscale.py`, the Automatic model of `engine/choice.py`);
5. **colorize** (`pipelines/colorize.py`); skipped with a note when no colorize model is installed or
   when the photo is in colour already (see :func:`is_monochrome`: grey and sepia-toned photos count
   as monochrome).

:func:`plan_restore` says, before any work, which steps will run and why the others will not (the
app's dialog shows these notes; the CLI logs them). :func:`restore_photo` checks the memory every
running step needs (engine/budget.py) before the first one, then runs them. Each step returns its own
:class:`StepResult` (the image after it, the mask for detect/fill, what it did in one line), so the app
can put each on the document as its own undoable step. Progress is one overall count across the
steps (each weighted by its rough cost), with the seconds since the start so a display can tell the
time left; the CancelToken is checked between steps and inside each one. The source ImageData and the
caller's mask are never modified: every step makes new arrays.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional

import numpy as np
import torch

from restorer.engine import budget, vocab
from restorer.engine.errors import InputError, UnknownModelError
from restorer.engine.imageio import ImageData
from restorer.engine.progress import CancelToken, Progress, ProgressCallback, check

log = logging.getLogger(__name__)

STEPS = ("detect", "fill", "clean", "upscale", "colorize")
TITLES = {"detect": "Detect damage", "fill": "Fill", "clean": "Clean up", "upscale": "Upscale",
          "colorize": "Colorize"}
SCALES = (1, 2, 4)
#: px the detected mask grows by before the fill. 0: on photos-train crops with synthetic damage growing it by
#: 1, 2 or 4 px lowered the PSNR after the fill (every false mark grows too), see docs/old-photos.md
DEFAULT_GROW = 0
#: relative cost of each step (progress weights); upscale is multiplied by the factor
WEIGHTS = {"detect": 1.0, "fill": 2.0, "clean": 2.0, "upscale": 1.5, "colorize": 1.0}
UNITS = 1000  # overall progress units per weight unit
# rough memory of the steps the budget module has no estimate for (bytes per pixel + fixed):
DETECT_BYTES_PER_PX = 48  # float32 RGB, probability, mask, a resize copy
DETECT_FIXED_BYTES = 400_000_000  # one 1024 px tile's activations
COLORIZE_BYTES_PER_PX = 16  # L (float64) and its float32 copy for the reduction, the output
COLORIZE_FIXED_BYTES = 500_000_000  # one strip's float64 Lab / trial RGB planes (~1 Mpx), the network
#: a photo is monochrome (grey or one tone, e.g. sepia) when the spread of its a/b (CIE Lab) is below this
MONO_AB_SPREAD = 4.0

Loader = Callable[[Any], torch.nn.Module]


@dataclass(frozen=True)
class RestoreOptions:
    """What to run. `scale` 1 means no upscale; model ids None mean the default installed model."""

    detect: bool = True
    fill: bool = True
    clean: bool = True
    scale: int = 1
    colorize: bool = False
    threshold: Optional[float] = None  # None: the detect model's own (calibrated) threshold
    grow: int = DEFAULT_GROW
    clean_strength: float = 1.0
    colorize_strength: float = vocab.COLORIZE_STRENGTH  # 0 = grey, 1 = the model's full colour
    detect_model: Optional[str] = None
    inpaint_model: Optional[str] = None
    clean_model: Optional[str] = None
    upscale_model: Optional[str] = None
    colorize_model: Optional[str] = None
    precision: str = "auto"

    def validate(self) -> "RestoreOptions":
        from restorer.engine.blend import check_strength

        if self.scale not in SCALES:
            raise InputError(f"the restore can upscale x2 or x4 (scale 1 = no upscale), got x{self.scale}")
        if self.threshold is not None and not 0.0 < float(self.threshold) < 1.0:
            raise InputError(f"the threshold must be between 0 and 1 (exclusive), got {self.threshold}")
        if int(self.grow) < 0:
            raise InputError(f"grow must be 0 or more pixels, got {self.grow}")
        check_strength(self.clean_strength)
        check_strength(self.colorize_strength)
        return self


@dataclass(frozen=True)
class StepPlan:
    """One step as planned: whether it will run, the model it will use, or why it will not run."""

    step: str
    run: bool
    note: str = ""
    spec: Any = None  # registry.ModelSpec of the model it runs

    @property
    def title(self) -> str:
        return TITLES[self.step]


@dataclass(frozen=True)
class StepResult:
    """What one step did. `image` is the photo after it (the same object as before for detect and for
    a skipped step); `mask` is the detected mask (detect) or the mask filled (fill)."""

    step: str
    ran: bool
    note: str
    image: ImageData
    mask: Optional[np.ndarray] = None
    fraction: Optional[float] = None  # detect / fill: share of the photo in the mask
    seconds: float = 0.0
    model_id: str = ""

    @property
    def title(self) -> str:
        return TITLES[self.step]

    @property
    def changed_image(self) -> bool:
        return self.ran and self.step != "detect"


@dataclass(frozen=True)
class RestoreResult:
    source: ImageData
    steps: list[StepResult] = field(default_factory=list)

    @property
    def image(self) -> ImageData:
        """The restored photo (the source itself when no step changed it)."""
        for result in reversed(self.steps):
            if result.changed_image:
                return result.image
        return self.source

    def step(self, name: str) -> Optional[StepResult]:
        return next((s for s in self.steps if s.step == name), None)

    @property
    def mask(self) -> Optional[np.ndarray]:
        """The mask that was (or would have been) filled: the caller's mask joined with what was detected."""
        fill = self.step("fill")
        if fill is not None and fill.mask is not None:
            return fill.mask
        detect = self.step("detect")
        return detect.mask if detect is not None else None


# ----------------------------------------------------------------------------- monochrome
def is_monochrome(image: ImageData | np.ndarray, spread: float = MONO_AB_SPREAD) -> bool:
    """True for a grey photo, or one toned in a single colour (sepia, cyanotype): its colours (a/b of
    CIE Lab) lie along one line through grey, so their spread across that line (the 2nd to 98th
    percentile range / 4) is below `spread`. A toned print's chroma grows with its brightness, so the
    spread along the line says nothing. Measured on the photo reduced to at most 256 px."""
    from restorer.engine.imageio import to_float01
    from restorer.engine.pipelines.colorize import rgb_to_lab

    if isinstance(image, ImageData):
        if image.gray:
            return True
        rgb = image.rgb
    else:
        rgb = np.asarray(image)
    step = max(1, int(np.ceil(max(rgb.shape[:2]) / 256)))
    small = to_float01(np.ascontiguousarray(rgb[::step, ::step]))
    if np.array_equal(small[..., 0], small[..., 1]) and np.array_equal(small[..., 1], small[..., 2]):
        return True
    lab = rgb_to_lab(torch.from_numpy(small).permute(2, 0, 1).double())
    ab = lab[1:].reshape(2, -1).T.numpy()  # (N, 2)
    _vals, vecs = np.linalg.eigh(ab.T @ ab / len(ab))  # the tone's direction: the largest eigenvector
    across = ab @ vecs[:, 0]  # the component across it (the smaller eigenvalue's vector)
    lo, hi = np.percentile(across, [2, 98])
    return bool((hi - lo) / 4.0 < spread)


# ----------------------------------------------------------------------------- planning
def _spec(task: str, model_id: Optional[str]):
    from restorer.engine import registry

    return registry.get_spec(model_id, task=task) if model_id else registry.default_model(task)


def plan_restore(image: Optional[ImageData], options: RestoreOptions, device_type: str = "cpu",
                 specs: Optional[dict[str, list]] = None) -> list[StepPlan]:
    """Which steps will run, with which model, and why the others will not (no model is loaded).

    `image` None: the colour check of the colorize step is left to the run. `specs` (task -> specs)
    replaces the registry's lists for the Automatic upscaler (the app passes its library's).
    """
    from restorer.engine.pipelines.clean import clean_models, default_clean_model

    options.validate()
    plans: list[StepPlan] = []

    def model_or_note(step: str, task: str, model_id: Optional[str], missing: str) -> StepPlan:
        try:
            return StepPlan(step, True, "", _spec(task, model_id))
        except UnknownModelError as exc:
            return StepPlan(step, False, missing if not model_id else f"{exc}; skipped")

    if options.detect:
        plans.append(model_or_note("detect", "detect", options.detect_model,
                                   "no damage-detection model is installed; skipped (paint the damage instead)"))
    else:
        plans.append(StepPlan("detect", False, "turned off: only the mask you painted is filled"))
    if options.fill:
        plans.append(model_or_note("fill", "inpaint", options.inpaint_model,
                                   "no fill (inpainting) model is installed; skipped"))
    else:
        plans.append(StepPlan("fill", False, "turned off"))
    if not options.clean:
        plans.append(StepPlan("clean", False, "turned off"))
    else:
        try:
            if options.clean_model:
                spec = next((s for s in clean_models() if s.id == options.clean_model), None)
                if spec is None:
                    raise UnknownModelError(f"'{options.clean_model}' is not an installed clean-up (x1) model")
            else:
                spec = default_clean_model()
            plans.append(StepPlan("clean", True, "", spec))
        except UnknownModelError as exc:
            note = ("no clean-up model is installed (a x1 model such as restore-x1); skipped"
                    if not options.clean_model else f"{exc}; skipped")
            plans.append(StepPlan("clean", False, note))
    if options.scale == 1:
        plans.append(StepPlan("upscale", False, "not asked"))
    else:
        from restorer.engine import registry
        from restorer.engine.choice import choose_upscaler

        try:
            if options.upscale_model:
                spec = registry.get_spec(options.upscale_model, task="sr")
                if spec.scale < options.scale:
                    raise InputError(f"model '{spec.id}' is x{spec.scale} and cannot upscale x{options.scale}")
            else:
                pool = (specs or {}).get("sr")
                pool = [s for s in (pool if pool is not None else registry.all_models("sr")) if s.scale > 1]
                spec = choose_upscaler(options.scale, device_type, specs=pool).spec
            plans.append(StepPlan("upscale", True, "", spec))
        except UnknownModelError as exc:
            plans.append(StepPlan("upscale", False, f"{exc}; skipped"))
        except InputError as exc:
            if options.upscale_model:
                raise
            plans.append(StepPlan("upscale", False, f"{exc}; skipped"))
    if not options.colorize:
        plans.append(StepPlan("colorize", False, "not asked"))
    else:
        plan = model_or_note("colorize", "colorize", options.colorize_model,
                             "no colorize model is installed yet; skipped")
        if plan.run and image is not None and not is_monochrome(image):
            plan = StepPlan("colorize", False, "the photo is in colour already; skipped", plan.spec)
        plans.append(plan)
    return plans


# ----------------------------------------------------------------------------- memory
def check_memory(size: tuple[int, int], plans: list[StepPlan], options: RestoreOptions,
                 bytes_per_channel: int = 1) -> None:
    """The memory check of every step that will run, at the size it will run at (InputError when one
    cannot fit), before any work."""
    w, h = size
    for plan in plans:
        if not plan.run:
            continue
        name = f"the restore's {plan.title.lower()} step"
        if plan.step == "detect":
            px = min(w * h, 4_000_000) + w * h
            est = budget.Estimate(int(px * DETECT_BYTES_PER_PX + DETECT_FIXED_BYTES))
            budget.check_fits(est, f"{name} ({w}x{h})", "use a smaller image")
        elif plan.step == "fill":
            budget.check_inpaint((w, h), bytes_per_channel=bytes_per_channel, name=name)
        elif plan.step == "clean":
            budget.check_upscale((w, h), 1, 1, channels=int(plan.spec.params.get("channels", 64)),
                                 bytes_per_channel=bytes_per_channel, name=name)
        elif plan.step == "upscale":
            budget.check_upscale((w, h), options.scale, plan.spec.scale,
                                 channels=int(plan.spec.params.get("channels", 64)),
                                 bytes_per_channel=bytes_per_channel, name=name)
            w, h = w * options.scale, h * options.scale
        elif plan.step == "colorize":
            est = budget.Estimate(int(w * h * COLORIZE_BYTES_PER_PX + COLORIZE_FIXED_BYTES))
            budget.check_fits(est, f"{name} ({w}x{h})", "colorize before upscaling, or use a smaller image")


# ----------------------------------------------------------------------------- running
def _pct(fraction: float) -> str:
    pct = 100.0 * fraction
    return f"{pct:.2f}%" if pct < 1 else f"{pct:.1f}%"


class _Overall:
    """Maps each step's own Progress onto one count across the steps."""

    def __init__(self, plans: list[StepPlan], scale: int, progress: Optional[ProgressCallback]) -> None:
        self.progress = progress
        self.weights = {p.step: WEIGHTS[p.step] * (scale if p.step == "upscale" else 1) for p in plans if p.run}
        self.total = max(1, int(round(UNITS * sum(self.weights.values()))))
        self.running = [p.step for p in plans if p.run]
        self.base = 0.0
        self.started = time.monotonic()
        self.step = ""
        self._said = ""

    def begin(self, step: str) -> None:
        self.step = step
        self.emit(0.0, "starting")

    def end(self, step: str) -> None:
        self.base += UNITS * self.weights.get(step, 0.0)
        self.emit(0.0, "done")

    def emit(self, fraction: float, message: str) -> None:
        if self.progress is None:
            return
        k = self.running.index(self.step) + 1 if self.step in self.running else 0
        done = int(min(self.total, self.base + UNITS * self.weights.get(self.step, 0.0) * min(1.0, fraction)))
        # short: the app shows it inside its progress bar; the step's own message is only logged
        label = f"{k}/{len(self.running)} {TITLES.get(self.step, self.step).lower()}"
        if message != self._said:
            self._said = message
            log.debug("%s: %s", label, message)
        self.progress(Progress(done, self.total, label, time.monotonic() - self.started))

    def callback(self) -> ProgressCallback:
        def inner(p: Progress) -> None:
            self.emit(p.fraction, p.message)

        return inner


def restore_photo(image: ImageData, options: RestoreOptions = RestoreOptions(), *,
                  mask: Optional[np.ndarray] = None, device: torch.device | str = "cpu",
                  loader: Optional[Loader] = None, plans: Optional[list[StepPlan]] = None,
                  progress: Optional[ProgressCallback] = None,
                  cancel: Optional[CancelToken] = None) -> RestoreResult:
    """Run the restore's steps on `image` (see the module docstring); returns every step's result.

    `mask` (bool, the photo's size) is what the user already marked: it is filled together with
    what detection finds. `loader(spec)` loads a model (default: registry.load_model; the app passes
    its model cache). `plans` defaults to :func:`plan_restore`'s.
    """
    from restorer.engine import registry

    options.validate()
    if not isinstance(image, ImageData):
        raise InputError(f"the restore takes an ImageData, got {type(image).__name__}")
    w, h = image.size
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != (h, w):
            raise InputError(f"the mask is {mask.shape[1]}x{mask.shape[0]} but the photo is {w}x{h}")
        mask = mask.astype(bool, copy=True)
    dev = torch.device(device)
    plans = plans if plans is not None else plan_restore(image, options, dev.type)
    check_memory(image.size, plans, options, image.rgb.dtype.itemsize)
    load = loader or registry.load_model
    overall = _Overall(plans, options.scale, progress)
    results: list[StepResult] = []
    current = image
    fill_mask = mask if mask is not None else np.zeros((h, w), dtype=bool)
    for plan in plans:
        check(cancel)
        if not plan.run:
            results.append(StepResult(plan.step, False, plan.note, current))
            continue
        overall.begin(plan.step)
        started = time.monotonic()
        result = _run_step(plan, current, fill_mask, options, dev, load, overall, cancel)
        result = replace(result, seconds=time.monotonic() - started, model_id=plan.spec.id if plan.spec else "")
        overall.end(plan.step)
        check(cancel)
        log.info("%s: %s (%.1f s)", plan.title, result.note, result.seconds)
        if result.step == "detect" and result.mask is not None:
            fill_mask = fill_mask | result.mask
        results.append(result)
        current = result.image
    return RestoreResult(image, results)


def _run_step(plan: StepPlan, current: ImageData, fill_mask: np.ndarray, options: RestoreOptions,
              dev: torch.device, load: Loader, overall: _Overall, cancel: Optional[CancelToken]) -> StepResult:
    step, spec = plan.step, plan.spec
    sub = overall.callback()
    overall.emit(0.0, f"loading {spec.id}")
    model = load(spec)
    check(cancel)
    if step == "detect":
        from restorer.engine.pipelines.detect import detect_damage

        found = detect_damage(current, model, threshold=options.threshold, device=dev, grow=int(options.grow),
                              progress=sub, cancel=cancel)
        low = f" grown into {found.low_threshold:.2f}" if found.low_threshold else ""
        note = (f"{_pct(found.fraction)} of the photo marked as damage (threshold {found.threshold:.2f}{low}"
                f"{f', grown {options.grow} px' if options.grow else ''})") if found.mask.any() else "no damage found"
        return StepResult(step, True, note, current, mask=found.mask, fraction=found.fraction)
    if step == "fill":
        if not fill_mask.any():
            return StepResult(step, False, "no damage found: nothing to fill", current, mask=fill_mask.copy(),
                              fraction=0.0)
        from restorer.engine.pipelines.inpaint import inpaint_image

        rgb = inpaint_image(current, fill_mask, model, device=dev, progress=sub, cancel=cancel,
                            precision=options.precision)
        fraction = float(fill_mask.mean())
        note = f"filled {_pct(fraction)} of the photo"
        alpha = None if current.alpha is None else current.alpha.copy()
        return StepResult(step, True, note, current.with_pixels(rgb, alpha), mask=fill_mask.copy(),
                          fraction=fraction)
    if step == "clean":
        from restorer.engine.pipelines.clean import clean_image

        out = clean_image(current, model, strength=options.clean_strength, device=dev, progress=sub,
                          cancel=cancel, precision=options.precision)
        strength = f" at strength {options.clean_strength:.2f}" if options.clean_strength < 1 else ""
        return StepResult(step, True, f"noise and grain cleaned with {spec.id}{strength}", out)
    if step == "upscale":
        from restorer.engine.pipelines.upscale import upscale_image

        res = upscale_image(current, model, spec.scale, options.scale, device=dev, progress=sub, cancel=cancel,
                            precision=options.precision)
        w, h = res.image.size
        return StepResult(step, True, f"x{options.scale} with {spec.id}: {w} x {h} px", res.image)
    if step == "colorize":
        from restorer.engine.pipelines.colorize import colorize_photo

        if not is_monochrome(current):  # the plan was made without the photo
            return StepResult(step, False, "the photo is in colour already; skipped", current)
        out = colorize_photo(current, model, strength=options.colorize_strength, device=dev, progress=sub,
                             cancel=cancel)
        return StepResult(step, True, f"colorized with {spec.id} (strength {options.colorize_strength:.2f})", out)
    raise ValueError(f"unknown restore step {step!r}")
