"""Train a model on a folder of your own photos: Tools ▸ Train a Model… (issue #6).

Where things are:

* ``dialog.py`` - :class:`TrainingDialog`: three pages and a progress panel; starting, resuming
  (``--resume`` with the run's own settings), attaching to and stopping runs.
* ``new_run_page.py``, ``runs_page.py``, ``models_page.py``, ``progress_panel.py`` - one module
  per page of the dialog (mixins of the dialog).
* ``process.py`` - :class:`TrainingProcess`, the supervisor of the worker process
  (``restorer train ... --events jsonl``), following its events file and how it ended.
* ``controller.py`` - the main window's side: the menu action (the main window puts it in its
  Tools menu), one dialog, and the question when
  the main window is closed during a run (stop it, or let it train on in the background).
* ``run_state.py`` - :class:`RunState`, the run the progress panel shows.

Qt-free, in the engine: the event stream (restorer/engine/training/events.py), run folders and
resume arguments (runs.py), the New model page's recipes and device defaults (recipes.py), the
estimate of what the chosen length gives on this device (estimate.py), the comparison of a
finished model with the one it started from (compare.py), and the options of ``restorer train``
(options.py).

The progress panel's clock (a one-second QTimer) moves the elapsed time and the time left
between the worker's reports; the New model page's step probe and the after-run comparison run
on worker threads (restorer/app/workers.py).

A run measured in minutes stops on its time budget like a stopped run; the dialog then finishes
it (``--resume --iters <iteration reached>``), which saves the model. A finished model is
registered in the user library by the trainer; the dialog reports it through the app's
:class:`restorer.app.library.ModelLibrary`.
"""

from restorer.app.training.controller import TrainingController
from restorer.app.training.dialog import TrainingDialog
from restorer.app.training.process import STOP_TIMEOUT_S, TrainingProcess
from restorer.app.training.run_state import RunState
from restorer.engine.training.recipes import TrainingSettings, defaults_for, start_from_params
from restorer.engine.training.runs import RunInfo, list_runs, pid_alive, read_run, resume_args

__all__ = ["STOP_TIMEOUT_S", "RunInfo", "RunState", "TrainingController", "TrainingDialog", "TrainingProcess",
           "TrainingSettings", "defaults_for", "list_runs", "pid_alive", "read_run",
           "resume_args", "start_from_params"]
