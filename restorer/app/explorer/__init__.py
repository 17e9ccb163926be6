"""The latent-space explorer window (issue #7): browse what a latent generator makes.

Opened from the main window (**Tools ▸ Explore Latent Space…**); non-modal, one per main window.

* A **model chooser** lists every latent generator in the library (shipped and the user's);
  with none installed the window says so and how to get one.
* A **grid of samples** drawn with a seed (the same seed always gives the same samples);
  **Re-roll** picks a new seed.  Clicking samples picks **A** then **B**; the path between
  them is shown as a strip (linear or slerp, any number of steps) that can be exported as an
  animated GIF; any single image can be saved as a PNG.
* **Attributes**: mark samples as having (+) or lacking (−) something, name it and
  *Create Attribute* saves ``mean(z+) - mean(z−)`` with the model; choosing a saved attribute
  gives a strength slider that moves the selected latent along it with a live preview.
* **Project a photo** (button, or drop a photo on the window) fits a latent to the photo, with
  progress and Cancel, shows the photo beside its reconstruction with the error, and makes the
  projected latent the selected one, so attributes apply to it.

Every model call runs through :class:`restorer.app.workers.JobWorker` (the app's single job
thread); the window only keeps numpy arrays.  Jobs of one kind are *coalesced*: while one is
running, only the newest request of that kind waits, so dragging the strength slider never
queues up stale renders.  Workers have no Qt parent and report to bound methods of the window,
so a worker that outlives a closed window is harmless.

Where things are: ``window.py`` (the window and its model chooser), ``panels.py`` (its
construction), ``lanes.py`` (the job lanes), ``samples.py`` (samples, marks, attributes),
``paths.py`` (interpolation, export, projection), ``jobs.py`` (the job functions, no widgets),
``state.py`` (constants); the tile view is restorer/app/widgets/tile_view.py.
"""

from restorer.app.explorer.jobs import LATENT_CACHE, ModelInfo
from restorer.app.explorer.state import COLOR_A, COLOR_B, COLOR_WITH, COLOR_WITHOUT, COLS, N_SAMPLES, Latent
from restorer.app.explorer.window import ExplorerWindow, show_explorer
from restorer.app.widgets.tile_view import TileView

__all__ = ["COLOR_A", "COLOR_B", "COLOR_WITH", "COLOR_WITHOUT", "COLS", "LATENT_CACHE", "N_SAMPLES", "ExplorerWindow",
           "Latent", "ModelInfo", "TileView", "show_explorer"]
