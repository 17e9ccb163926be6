"""The New model page's estimate line: what the chosen length gives on this device, before Start.

One training step of the chosen upscale network and batch is timed on a worker thread
(restorer/engine/training/estimate.py, cached per setting; never on the GUI thread) and the
line says about how many iterations the chosen minutes give, and on a CPU which model and
duration to choose. A mixin of :class:`restorer.app.training.new_run_page.NewRunPage`.
"""

from __future__ import annotations

import logging
from typing import Any

from restorer.app.training.run_state import esc
from restorer.app.workers import run_in_thread
from restorer.engine.training import estimate

log = logging.getLogger(__name__)

ESTIMATE_DELAY_MS = 300  # the estimate line waits for the fields to settle


def estimate_title(spec: Any) -> str:
    from restorer.engine.training.compare import short_title

    return short_title(spec, spec.id)


class EstimateLine:
    """The estimate line of the New model page (mixed into NewRunPage)."""

    def _request_estimate(self, *_args: Any) -> None:
        """Update the estimate line soon (field changes come in bursts)."""
        self._estimate_timer.start()

    def _probe_key(self) -> Any:
        return estimate.ProbeKey(arch=self._arch(), scale=self.scale, blocks=int(self.blocks_spin.value()),
                                 channels=int(self.channels_spin.value()), patch=int(self.patch_spin.value()),
                                 batch=int(self.batch_spin.value()), device=self.device)

    def _update_estimate(self) -> None:
        if not self.isVisible():  # closed (or not shown yet): showEvent asks again
            return
        if self.task != "sr":
            text = {"detect": "A first damage detector takes about an hour on a CPU; a GPU is much faster.",
                    "colorize": "A first colorize model takes about an hour on a CPU and gives muted colour; "
                                "a GPU is much faster."}.get(self.task, "Fill and latent models train for hours "
                                                                         "on a CPU; a GPU is much faster.")
            self.estimate_label.setText(text if self.device == "cpu" else "")
            self.estimate_label.setVisible(self.device == "cpu")
            return
        self.estimate_label.setVisible(True)
        key = self._probe_key()
        step_s = estimate.cached_step_seconds(key)
        if step_s is not None:
            self._show_estimate(step_s)
            return
        if self._probing is not None:
            return  # one probe at a time: the one running asks again when it ends
        if self.process is not None and self.process.running:
            self.estimate_label.setText("The estimate for this device is measured when no run is training.")
            return
        self.estimate_label.setText("<i>Measuring a training step on this device…</i>")
        self._probing = key

        def done(result: Any, error: Any) -> None:
            self._probing = None
            if error is not None:
                log.warning("training step probe failed: %s", error)
                self.estimate_label.setText("")
            self._update_estimate() if error is None else None
            self.estimateShown.emit()

        run_in_thread(lambda: estimate.probe_step_seconds(key), done, self)

    def _show_estimate(self, step_s: float) -> None:
        compact = next((spec for spec, params in self._specs.values() if params.get("arch") == "compact_sr"), None)
        self.estimate_label.setText(esc(estimate.plan_line(
            step_s, length_mode=str(self.length_unit.currentData()), minutes=float(self.length_spin.value()),
            iterations=int(self.length_spin.value()), device=self.device,
            fine_tune=bool(self.start_combo.currentData()), compact=self._arch() == "compact_sr",
            compact_choice=estimate_title(compact) if compact is not None else "")))
        self.estimateShown.emit()
