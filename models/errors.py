"""The one error family of the ``models`` package (ground-side training and data tools)."""

from __future__ import annotations


class ModelError(Exception):
    """A bad argument or state in data generation, training, quantization or export.

    The message says what was wrong and what to do, e.g.
    ``ModelError("unknown surface 'ice': use one of land, water, desert, urban")``.
    """
