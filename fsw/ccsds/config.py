"""Link configuration shared by both ends: ids, frame sizes, COP-1 and SDLS settings, keys.

Loaded from a small TOML or JSON key file (see ``fsw/ccsds/testkeys/test_link.toml``,
whose keys are public and for tests only)::

    [link]
    spacecraft_id = 42
    tm_frame_len = 1115
    [sdls]
    active_spi = 1
    [[sdls.keys]]
    id = 1
    hex = "8d05..."
    [[sdls.sa]]
    spi = 1
    key_id = 1
    algorithm = "hmac-sha256"

>>> cfg = LinkConfig.load(TEST_KEY_FILE)
>>> cfg.spacecraft_id, cfg.tm_frame_len, cfg.active_spi
(42, 1115, 1)
>>> LinkConfig(spacecraft_id=7).sdls_enabled
False
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from fsw.ccsds.errors import ConfigError, SdlsError
from fsw.ccsds.sdls import MacAlgorithm, SecurityAssociation

#: The repository's test key file. Its keys are public: never fly them.
TEST_KEY_FILE = Path(__file__).parent / "testkeys" / "test_link.toml"


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

    def __post_init__(self) -> None:
        self._check_link()
        self._check_security()

    def _check_link(self) -> None:
        """Identifiers, frame lengths and COP-1 windows."""
        if not 0 <= self.spacecraft_id <= 0x3FF:
            raise ConfigError(f"spacecraft_id {self.spacecraft_id} outside 0..1023")
        if not 0 <= self.tc_vcid <= 63:
            raise ConfigError(f"tc_vcid {self.tc_vcid} outside 0..63")
        if not self.tm_vcids or any(not 0 <= v <= 7 for v in self.tm_vcids):
            raise ConfigError(f"tm_vcids {self.tm_vcids} must be one or more of 0..7")
        if self.idle_vcid in self.tm_vcids or not 0 <= self.idle_vcid <= 7:
            raise ConfigError(f"idle_vcid {self.idle_vcid} must be 0..7 and not a data VC")
        if not 64 <= self.tm_frame_len <= 2048:
            raise ConfigError(f"tm_frame_len {self.tm_frame_len} outside 64..2048")
        if not 32 <= self.tc_max_frame_len <= 1024:
            raise ConfigError(f"tc_max_frame_len {self.tc_max_frame_len} outside 32..1024")
        if not 0 <= self.map_id <= 63:
            raise ConfigError(f"map_id {self.map_id} outside 0..63")
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

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> LinkConfig:
        """Build from the parsed key-file structure (``[link]`` and ``[sdls]`` tables)."""
        if not isinstance(doc, dict):
            raise ConfigError("the key file must hold a table at the top level")
        link = doc.get("link", {})
        sdls = doc.get("sdls", {})
        if not isinstance(link, dict) or not isinstance(sdls, dict):
            raise ConfigError("[link] and [sdls] must be tables")
        known = {f.name for f in fields(cls)} - {"security_associations", "keys", "active_spi"}
        unknown = set(link) - known
        if unknown:
            raise ConfigError(f"unknown [link] setting(s): {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = dict(link)
        if "tm_vcids" in kwargs:
            kwargs["tm_vcids"] = tuple(kwargs["tm_vcids"])
        try:
            keys = tuple((int(k["id"]), bytes.fromhex(str(k["hex"]))) for k in sdls.get("keys", []))
            sas = tuple(
                SaConfig(
                    spi=int(s["spi"]),
                    key_id=int(s["key_id"]),
                    algorithm=str(s.get("algorithm", MacAlgorithm.HMAC_SHA256.value)),
                    mac_len=int(s.get("mac_len", 16)),
                    window=int(s.get("window", 64)),
                )
                for s in sdls.get("sa", [])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad [sdls] entry: {exc}") from None
        active = sdls.get("active_spi")
        try:
            return cls(
                **kwargs,
                active_spi=int(active) if active is not None else None,
                security_associations=sas,
                keys=keys,
            )
        except TypeError as exc:
            raise ConfigError(f"bad [link] setting: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> LinkConfig:
        """Read a ``.toml`` or ``.json`` key file."""
        path = Path(path)
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read key file {path}: {exc.strerror}") from None
        try:
            if path.suffix.lower() == ".json":
                doc = json.loads(text)
            else:
                doc = tomllib.loads(text.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"key file {path} is not valid {path.suffix[1:]}: {exc}") from None
        return cls.from_dict(doc)


__all__ = ["TEST_KEY_FILE", "LinkConfig", "SaConfig"]
