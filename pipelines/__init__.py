"""Beam entry points (``python -m pipelines.<name>``), composite transforms and sinks."""
