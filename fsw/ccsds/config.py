"""Link configuration shared by both ends: ids, frame sizes, COP-1 and SDLS settings, keys.

Loaded from a small TOML or JSON key file (see ``fsw/ccsds/testkeys/test_link.toml``,
whose keys are public and for tests only)::

    [link]
    spacecraft_id = 42
    tm_frame_len = 1115
    [sdls]
    active_spi = 1
    recovery_spi = 255      # optional: the SDLS reset after a lost state
    recovery_key_id = 5
    [[sdls.keys]]
    id = 1
    hex = "8d05..."
    [[sdls.sa]]
    spi = 1
    key_id = 1
    algorithm = "hmac-sha256"

The file's layout and every key's type and range are one schema, :class:`KeyFile`
(msgspec Structs, read by :func:`fsw.configfile.load_toml`); the checks that span keys
(SPIs and key ids that must exist, windows that must fit) are :class:`LinkConfig`'s.
A bad file raises :class:`~fsw.ccsds.errors.ConfigError` naming the file and the key.

>>> cfg = LinkConfig.load(TEST_KEY_FILE)
>>> cfg.spacecraft_id, cfg.tm_frame_len, cfg.active_spi
(42, 1115, 1)
>>> LinkConfig(spacecraft_id=7).sdls_enabled
False
>>> LinkConfig(spacecraft_id=5000)
Traceback (most recent call last):
...
fsw.ccsds.errors.ConfigError: spacecraft_id: expected an integer >= 0 and <= 1023, got 5000
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from fsw import configfile
from fsw.ccsds.errors import ConfigError, SdlsError
from fsw.ccsds.sdls import MacAlgorithm, SecurityAssociation

#: The repository's test key file. Its keys are public: never fly them.
TEST_KEY_FILE = Path(__file__).parent / "testkeys" / "test_link.toml"


VcId = Annotated[int, Meta(ge=0, le=7)]
Small = Annotated[int, Meta(ge=1, le=255)]


class LinkTable(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The ``[link]`` table: ids, frame sizes, randomizers, COP-1 windows and timer."""

    spacecraft_id: Annotated[int, Meta(ge=0, le=0x3FF)]
    tc_vcid: Annotated[int, Meta(ge=0, le=63)] = 0
    tm_vcids: Annotated[tuple[VcId, ...], Meta(min_length=1, max_length=8)] = (0,)
    idle_vcid: VcId = 7
    tm_frame_len: Annotated[int, Meta(ge=64, le=2048)] = 1115
    tc_max_frame_len: Annotated[int, Meta(ge=32, le=1024)] = 1024
    tc_segment_header: bool = True
    map_id: Annotated[int, Meta(ge=0, le=63)] = 0
    randomize_tc: bool = True
    randomize_tm: bool = True
    farm_window: Small = 20
    fop_window: Small = 8
    fop_t1_s: Annotated[float, Meta(gt=0.0, le=86400.0)] = 2.0
    fop_transmission_limit: Small = 8


class KeyEntry(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One ``[[sdls.keys]]`` entry: a key id and the key as hex."""

    id: Annotated[int, Meta(ge=0, le=0xFFFF)]
    hex: Annotated[str, Meta(pattern="^([0-9A-Fa-f]{2})+$", description="hex digits, two per byte")]


class SaEntry(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One ``[[sdls.sa]]`` entry: a security association (its key and algorithm)."""

    spi: Annotated[int, Meta(ge=0, le=0xFFFF)]
    key_id: Annotated[int, Meta(ge=0, le=0xFFFF)]
    algorithm: MacAlgorithm = MacAlgorithm.HMAC_SHA256
    mac_len: int = 16
    window: int = 64


class SdlsTable(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The ``[sdls]`` table: the active SPI, the key ring, the security associations, and
    the recovery key that authorises an SDLS reset (docs/ccsds.md, "After a lost state")."""

    active_spi: Annotated[int, Meta(ge=0, le=0xFFFF)] | None = None
    recovery_spi: Annotated[int, Meta(ge=1, le=0xFFFE)] | None = None
    recovery_key_id: Annotated[int, Meta(ge=0, le=0xFFFF)] | None = None
    keys: tuple[KeyEntry, ...] = ()
    sa: tuple[SaEntry, ...] = ()


class KeyFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A link configuration and key file, as written."""

    link: LinkTable
    sdls: SdlsTable = msgspec.field(default_factory=SdlsTable)

    def to_config(self) -> LinkConfig:
        """The :class:`LinkConfig` this file describes (its cross-key checks run here)."""
        return LinkConfig(
            **msgspec.structs.asdict(self.link),
            active_spi=self.sdls.active_spi,
            recovery_spi=self.sdls.recovery_spi,
            recovery_key_id=self.sdls.recovery_key_id,
            security_associations=tuple(
                SaConfig(sa.spi, sa.key_id, sa.algorithm.value, sa.mac_len, sa.window)
                for sa in self.sdls.sa
            ),
            keys=tuple((k.id, bytes.fromhex(k.hex)) for k in self.sdls.keys),
        )


@dataclass(slots=True, frozen=True)
class SaConfig:
    """One security association as configured: which key, which algorithm."""

    spi: int
    key_id: int
    algorithm: str = MacAlgorithm.HMAC_SHA256.value
    mac_len: int = 16
    window: int = 64


@dataclass(slots=True, frozen=True)
class LinkConfig:
    """Everything both ends of the link must agree on."""

    spacecraft_id: int
    tc_vcid: int = 0
    tm_vcids: tuple[int, ...] = (0,)
    idle_vcid: int = 7
    tm_frame_len: int = 1115
    tc_max_frame_len: int = 1024
    tc_segment_header: bool = True
    map_id: int = 0
    randomize_tc: bool = True
    randomize_tm: bool = True
    farm_window: int = 20
    fop_window: int = 8
    fop_t1_s: float = 2.0
    fop_transmission_limit: int = 8
    active_spi: int | None = None
    security_associations: tuple[SaConfig, ...] = ()
    keys: tuple[tuple[int, bytes], ...] = ()
    recovery_spi: int | None = None
    recovery_key_id: int | None = None

    def __post_init__(self) -> None:
        self._check_link()
        self._check_security()

    def _check_link(self) -> None:
        """Identifiers, frame lengths and COP-1 windows."""
        # Each setting's type and range: the [link] table's schema, one source of truth.
        settings = {name: getattr(self, name) for name in LinkTable.__struct_fields__}
        try:
            configfile.convert(settings, LinkTable, "link settings")
        except configfile.ConfigError as exc:
            raise ConfigError(f"{exc.key}: {exc.reason}") from None
        if self.idle_vcid in self.tm_vcids:
            raise ConfigError(f"idle_vcid {self.idle_vcid} must not be a data VC")
        if self.fop_window >= self.farm_window // 2:
            raise ConfigError(
                f"fop_window {self.fop_window} must be below half the farm_window "
                f"{self.farm_window}, or in-flight frames look like a lockout"
            )

    def _check_security(self) -> None:
        """Keys and security associations: unique, complete and usable."""
        key_ids = [k for k, _ in self.keys]
        if len(set(key_ids)) != len(key_ids):
            raise ConfigError("the key file lists the same key id twice")
        spis = [sa.spi for sa in self.security_associations]
        if len(set(spis)) != len(spis):
            raise ConfigError("the key file lists the same SPI twice")
        for sa in self.security_associations:
            if sa.key_id not in key_ids:
                raise ConfigError(f"SA {sa.spi} uses key id {sa.key_id}, which is not in the file")
        if self.active_spi is not None and self.active_spi not in spis:
            raise ConfigError(f"active_spi {self.active_spi} has no security association")
        for sa in self.security_associations:
            try:
                self.make_sa(sa.spi)
            except SdlsError as exc:
                raise ConfigError(f"SA {sa.spi}: {exc.reason}") from None
        self._check_recovery(key_ids, spis)

    def _check_recovery(self, key_ids: list[int], spis: list[int]) -> None:
        """The recovery SPI and key: both or neither, and apart from every SA."""
        if (self.recovery_spi is None) != (self.recovery_key_id is None):
            raise ConfigError("recovery_spi and recovery_key_id go together: give both or neither")
        if self.recovery_spi is None or self.recovery_key_id is None:
            return
        if self.recovery_spi in spis:
            raise ConfigError(f"recovery_spi {self.recovery_spi} is also a security association")
        if self.recovery_key_id not in key_ids:
            raise ConfigError(f"recovery_key_id {self.recovery_key_id} is not in the file")
        if any(sa.key_id == self.recovery_key_id for sa in self.security_associations):
            raise ConfigError(
                f"recovery_key_id {self.recovery_key_id} is also an SA's key: the recovery "
                "key must be kept apart"
            )
        try:
            self.make_recovery_sa()
        except SdlsError as exc:
            raise ConfigError(f"recovery key: {exc.reason}") from None

    @property
    def sdls_enabled(self) -> bool:
        """True when TC frames are authenticated (an active SPI is configured)."""
        return self.active_spi is not None

    def key(self, key_id: int) -> bytes:
        """Key ``key_id`` from the key ring."""
        for kid, key in self.keys:
            if kid == key_id:
                return key
        raise ConfigError(f"key id {key_id} is not in the key file")

    def sa_config(self, spi: int) -> SaConfig:
        """The configuration of SA ``spi``."""
        for sa in self.security_associations:
            if sa.spi == spi:
                return sa
        raise ConfigError(f"SPI {spi} is not in the key file")

    def make_sa(self, spi: int) -> SecurityAssociation:
        """A fresh :class:`SecurityAssociation` (sequence numbers at 0) for ``spi``."""
        sa = self.sa_config(spi)
        return SecurityAssociation(
            spi=sa.spi,
            key=self.key(sa.key_id),
            algorithm=sa.algorithm,
            mac_len=sa.mac_len,
            window=sa.window,
        )

    def make_recovery_sa(self) -> SecurityAssociation | None:
        """The recovery association (HMAC-SHA-256 under the recovery key), or None."""
        if self.recovery_spi is None or self.recovery_key_id is None:
            return None
        return SecurityAssociation(
            spi=self.recovery_spi, key=self.key(self.recovery_key_id), mac_len=16
        )

    @classmethod
    def from_dict(cls, doc: dict[str, Any], source: str = "<key file>") -> LinkConfig:
        """Build from the parsed key-file structure (``[link]`` and ``[sdls]`` tables)."""
        try:
            return configfile.convert(doc, KeyFile, source).to_config()
        except configfile.ConfigError as exc:
            raise ConfigError(str(exc)) from None
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc.reason}") from None

    @classmethod
    def load(cls, path: str | Path) -> LinkConfig:
        """Read a ``.toml`` or ``.json`` key file."""
        path = Path(path)
        read = configfile.load_json if path.suffix.lower() == ".json" else configfile.load_toml
        try:
            return read(path, KeyFile).to_config()
        except configfile.ConfigError as exc:
            raise ConfigError(str(exc)) from None
        except ConfigError as exc:
            raise ConfigError(f"{path.name}: {exc.reason}") from None


__all__ = [
    "TEST_KEY_FILE",
    "KeyEntry",
    "KeyFile",
    "LinkConfig",
    "LinkTable",
    "SaConfig",
    "SaEntry",
    "SdlsTable",
]
