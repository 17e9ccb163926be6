"""The app's vocabulary, defined once: its name, the model tasks, compute devices, scales and formats.

Import these instead of spelling the strings out again (TODO(lead): registry.py's TASKS/APP_NAME and
devices.py's DEVICE_CHOICES are the same values and should import them from here).
"""

from __future__ import annotations

APP_NAME = "Restorer"  # the user data / config folder names and window titles

TASKS = ("sr", "inpaint", "latent")  # what a model does: super-resolution, fill, latent generator
TRAIN_TASKS = TASKS  # `restorer train <task>`
DEVICES = ("auto", "cpu", "cuda", "mps")  # the device preference; "auto" picks CUDA, then MPS, then CPU

SR_TRAIN_SCALES = (2, 4, 8)  # the factors `restorer train sr --scale` builds networks for
LATENT_SIZES = (64, 128)  # the image sides of the latent (DCGAN) generator
