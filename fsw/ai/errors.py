"""The one error family of the on-board AI runtime (``fsw.ai``).

Every failure the runtime reports is an :class:`AiError`:

* :class:`ModelIntegrityError` -- a model file or the in-memory arena is damaged or
  forged. It names the region (``header``, ``graph``, ``table-a``, ``table-b``, ``arena``,
  ``padding``, ``sha256``, ``hmac``, ``file``) and, for the arena, the block.
* :class:`ModelDisabledError` -- the model was switched off because a weight block could
  not be repaired; use the fallback model until a repair succeeds.
* :class:`AiError` itself -- bad arguments (wrong input shape, unknown kernel backend).
"""

from __future__ import annotations


class AiError(Exception):
    """Base of every error raised by ``fsw.ai``."""


class ModelIntegrityError(AiError):
    """A ``.gnm`` file (or the loaded arena) fails a check.

    >>> e = ModelIntegrityError("arena", "block 3 fails CRC-32C", block=3, offset=12288)
    >>> str(e), e.region, e.block
    ('arena: block 3 fails CRC-32C', 'arena', 3)
    """

    def __init__(
        self, region: str, detail: str, *, block: int | None = None, offset: int | None = None
    ) -> None:
        super().__init__(f"{region}: {detail}")
        self.region = region
        self.detail = detail
        self.block = block
        self.offset = offset


class ModelDisabledError(AiError):
    """Inference was refused: the model is disabled after an unrepairable weight block."""
