"""The line-simulator interface every hardware-in-the-loop scenario is written against.

A line simulator is "the exchange plus the far-end caller" as the device under test (a Pi running
gatewayd) sees it from its FXO jack or SIP trunk. Two kinds of backend implement it:

* ``emulator`` (CI): the device emulators in ``drivers/emulators`` (a V.253 modem on a pty, an FXO
  board on a pty with audio through ALSA) or a SIP far end on loopback, driving a real gatewayd
  process;
* ``lab`` (bench): a SIP user agent calling through an ATA's FXS port wired to the Pi's FXO jack,
  optionally a Teltone TLE-A for ring and caller-ID edge cases.

Scenarios only use what the real rig can do (``capabilities``), and assert only what gatewayd shows
from outside (handler transcript, recordings, logs, metrics) and what the simulator heard. All times
are seconds; all audio is 8 kHz mono int16.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from media.frame import Samples


class CidMode(enum.StrEnum):
    BELL202_MDMF = "bell202-mdmf"  # North America, after the first ring
    BELL202_SDMF = "bell202-sdmf"
    ETSI_FSK_BEFORE_RING = "etsi-fsk-before-ring"  # UK: line reversal + DT-AS, then V.23 FSK, then ring
    ETSI_DTMF = "etsi-dtmf"  # DTMF CLIP before the first ring
    NONE = "none"


class Disconnect(enum.StrEnum):
    """How the far end's hang-up shows on the line."""

    CPC = "cpc"  # loop-current drop (open switching interval)
    POLARITY = "polarity"  # battery reversal
    BUSY = "busy"  # busy tone only
    REORDER = "reorder"
    DIAL_TONE = "dial-tone"
    SILENCE = "silence"  # nothing at all: only gatewayd's silence timer can tell
    BYE = "bye"  # SIP


@dataclass(frozen=True)
class CallerId:
    number: str | None
    name: str | None = None
    when: datetime | None = None
    number_absent: Literal["O", "P"] | None = None  # out of area / private
    name_absent: Literal["O", "P"] | None = None


@dataclass(frozen=True)
class CidFaults:
    bad_checksum: bool = False
    truncated: bool = False
    freq_offset_pct: float = 0.0
    baud_offset_pct: float = 0.0
    after_ring: int = 1  # caller ID after this ring (2: the UK "sendcalleridafter=2" case)


NO_FAULTS = CidFaults()


@dataclass(frozen=True)
class LineConfig:
    country: str = "us"
    cid: CidMode = CidMode.BELL202_MDMF
    ring_cadence: tuple[float, ...] | None = None  # on, off, on, off ... seconds; None: the country's
    disconnect: Disconnect = Disconnect.CPC
    cpc_ms: int = 600
    tone_after_disconnect: Literal["busy", "reorder", "dial", "none"] = "busy"


@dataclass(frozen=True)
class SimEvent:
    t: float  # seconds since the simulator was reset
    kind: str  # "off-hook", "on-hook", "flash", "dtmf-from-dut", "ring", "answered"
    detail: str = ""


@dataclass
class Recording:
    """What the device under test transmitted while the context was open."""

    samples: Samples | None = None
    started_at: float = 0.0


@dataclass
class SimCall:
    """One call the simulator placed towards the device."""

    caller_id: CallerId | None
    rings: int = 0
    answered_at: float | None = None
    ended_at: float | None = None
    extra: dict[str, object] = field(default_factory=dict)


class LineSimulator(Protocol):
    #: what this backend can do: "ring", "cid-fsk", "cid-dtmf", "cid-faults", "cid-before-ring",
    #: "disconnect-cpc", "disconnect-polarity", "disconnect-tones", "inband-dtmf", "offnominal-dtmf",
    #: "extension-pickup", "call-waiting", "device-faults", "sip"
    capabilities: frozenset[str]
    #: per-backend timing tolerance for assertions (seconds)
    tolerance_s: float

    def configure(self, config: LineConfig) -> None: ...

    def ring(self, caller_id: CallerId | None = None, *, max_rings: int = 10,
             cid_faults: CidFaults = NO_FAULTS) -> SimCall: ...

    def wait_answered(self, timeout: float) -> bool: ...

    def wait_on_hook(self, timeout: float) -> bool: ...  # the DUT hung up (or never answered)

    @property
    def off_hook(self) -> bool: ...

    def events(self) -> Iterator[SimEvent]: ...

    def play(self, audio: Samples, *, level_dbm0: float | None = None, wait: bool = True) -> None: ...

    def send_dtmf(self, digits: str, *, on_ms: int = 80, off_ms: int = 80, level_dbm0: float = -10.0,
                  twist_db: float = 0.0, freq_offset_pct: float = 0.0, inband: bool = True) -> None: ...

    def send_tone(self, tone: str, seconds: float) -> None: ...

    def record_far_end(self) -> AbstractContextManager[Recording]: ...

    def hang_up(self, *, how: Disconnect | None = None) -> None: ...

    def abandon(self) -> None: ...

    def reset(self) -> None: ...


@runtime_checkable
class CallWaiting(Protocol):
    """Backends with ``"call-waiting"``: a call-waiting alert and caller-ID spill during an answered call."""

    def call_waiting(self, caller_id: CallerId) -> None: ...


@runtime_checkable
class DeviceFaults(Protocol):
    """Backends with ``"device-faults"`` (emulators): the DUT's device vanishes and comes back, or sends garbage."""

    def unplug(self) -> None: ...

    def replug(self) -> None: ...

    def garbage(self, data: bytes) -> None: ...


@runtime_checkable
class ExtensionPickup(Protocol):
    """Backends with ``"extension-pickup"``: a telephone on the same line is picked up during the call."""

    def extension_pickup(self) -> None: ...
