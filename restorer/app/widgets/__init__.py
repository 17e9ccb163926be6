"""Reusable widgets: the loss plot, the image preview and the tile view."""

from restorer.app.widgets.image_preview import ImagePreview
from restorer.app.widgets.loss_plot import LossPlot

__all__ = ["ImagePreview", "LossPlot"]
