"""Experiment files: YAML loaded into a typed, validated model (``loader.load``)."""
