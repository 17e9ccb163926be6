"""Restorer's engine: models, pipelines, training and image I/O. Never imports Qt."""
