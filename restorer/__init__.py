"""Restorer: photo restoration (upscaling, inpainting, latent exploration) you can train yourself."""

__version__ = "0.1.0"
