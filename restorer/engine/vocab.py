"""The app's vocabulary, defined once: its name, the model tasks, compute devices, scales and formats.

Import these instead of spelling the strings out again (the model-file format, the registry, the CLI and the
app do).
"""

from __future__ import annotations

APP_NAME = "Restorer"  # the user data / config folder names and window titles

# what a model does: super-resolution (x1: clean-up), fill, latent generator, damage detection, colorization
TASKS = ("sr", "inpaint", "latent", "detect", "colorize")
TRAIN_TASKS = ("sr", "inpaint", "latent", "detect", "colorize")  # `restorer train <task>` (every model task)
DEVICES = ("auto", "cpu", "cuda", "mps")  # the device preference; "auto" picks CUDA, then MPS, then CPU

SR_TRAIN_SCALES = (1, 2, 3, 4, 8)  # `restorer train sr --scale` factors (1: x1 clean-up, compact; 3: fast_sr, compact_sr)
SR_NATIVE_X3_ARCHS = ("fast_sr", "compact_sr")  # architectures with a native x3 upsampler (PixelShuffle(3))
#: the colorize strength Image > Colorize…, `restorer colorize` and the restore's colorize step start at
#: (0 = grey, 1 = the model's full colour); chosen on photos-val with the shipped model (docs/old-photos.md)
COLORIZE_STRENGTH = 0.6
LATENT_SIZES = (64, 128)  # the image sides of the latent (DCGAN) generator
