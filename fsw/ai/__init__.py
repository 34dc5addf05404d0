"""On-board AI: the int8 runtime, the ``.gnm`` artifact format, the scrubber, fault injection.

Importing the package is cheap: it holds only the errors, the CRC and where the shipped
artifacts are. The runtime (which loads torch) is a module of its own::

    from fsw.ai.runtime import Runtime, Prediction, ScrubReport, AiEvent

>>> from fsw.ai.runtime import Runtime
>>> rt = Runtime.load(shipped_dir() / "cloudnet-s.gnm")
>>> rt.name, rt.enabled, rt.block_size
('cloudnet-s', True, 4096)

Modules: :mod:`fsw.ai.runtime` (inference, arena, scrub, repair), :mod:`fsw.ai.gnm`
(the artifact format), :mod:`fsw.ai.scrubber` and :mod:`fsw.ai.payload` (the flight
components), :mod:`fsw.ai.faults` (fault injection).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fsw.ai.crc import crc32c
from fsw.ai.errors import AiError, ModelDisabledError, ModelIntegrityError


def shipped_dir() -> Path:
    """Where the int8 artifacts that fly (``cloudnet-s.gnm``, ``cloudnet-l.gnm``) are installed.

    They are package data of ``fsw.ai`` (``fsw/ai/artifacts/``), so a board that installs
    only the flight software has them; the lab (``models/``) writes new ones elsewhere.

    >>> sorted(p.name for p in shipped_dir().glob("*.gnm"))
    ['cloudnet-l.gnm', 'cloudnet-s.gnm']
    """
    return Path(str(resources.files("fsw.ai").joinpath("artifacts")))


__all__ = [
    "AiError",
    "ModelDisabledError",
    "ModelIntegrityError",
    "crc32c",
    "shipped_dir",
]
