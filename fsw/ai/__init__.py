"""On-board AI: the int8 runtime, the ``.gnm`` artifact format, the scrubber, fault injection.

>>> from fsw.ai import Runtime
>>> rt = Runtime.load("fsw/ai/artifacts/cloudnet-s.gnm")
>>> rt.name, rt.enabled, rt.block_size
('cloudnet-s', True, 4096)

Flight code imports only from here: ``Runtime``, ``Prediction``, ``ScrubReport``,
``AiEvent``, ``crc32c`` and the errors. Fault injection lives in :mod:`fsw.ai.faults`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsw.ai.crc import crc32c
from fsw.ai.errors import AiError, ModelDisabledError, ModelIntegrityError

if TYPE_CHECKING:
    from fsw.ai.runtime import (
        DEFAULT_SCRUB_BUDGET_BYTES,
        AiEvent,
        Prediction,
        Runtime,
        RuntimeStats,
        ScrubReport,
    )

_RUNTIME_NAMES = frozenset(
    {
        "DEFAULT_SCRUB_BUDGET_BYTES",
        "AiEvent",
        "Prediction",
        "Runtime",
        "RuntimeStats",
        "ScrubReport",
    }
)


def shipped_dir() -> Path:
    """Where the int8 artifacts that fly (``cloudnet-s.gnm``, ``cloudnet-l.gnm``) are installed.

    They are package data of ``fsw.ai`` (``fsw/ai/artifacts/``), so a board that installs
    only the flight software has them; the lab (``models/``) writes new ones elsewhere.

    >>> sorted(p.name for p in shipped_dir().glob("*.gnm"))
    ['cloudnet-l.gnm', 'cloudnet-s.gnm']
    """
    return Path(str(resources.files("fsw.ai").joinpath("artifacts")))


def __getattr__(name: str) -> Any:
    """Import the runtime (and torch) only when it is used: `import fsw.ai` stays cheap."""
    if name in _RUNTIME_NAMES:
        from fsw.ai import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'fsw.ai' has no attribute {name!r}")


__all__ = [
    "DEFAULT_SCRUB_BUDGET_BYTES",
    "AiError",
    "AiEvent",
    "ModelDisabledError",
    "ModelIntegrityError",
    "Prediction",
    "Runtime",
    "RuntimeStats",
    "ScrubReport",
    "crc32c",
    "shipped_dir",
]
