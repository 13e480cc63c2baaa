"""What the FXO driver needs from the DSP modules, as small protocols.

The driver runs two detectors on the received audio:

* a caller-ID decoder, fed the on-hook audio while the caller-ID window is open (between rings, or
  after a line reversal, or — for DTMF CLIP — whenever the line is idle);
* a supervision detector, fed every 20 ms frame of an answered call, that reports busy / reorder /
  dial tone (the far end hung up and the exchange says so).

The factories in :mod:`drivers.fxo.detectors` build them from ``media.callerid`` and ``media.progress``;
tests may pass their own. The driver owns each instance on its media thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from media.frame import AudioFrame, Samples


@dataclass(frozen=True)
class CallerIdRecord:
    """A decoded caller-ID message (SDMF or MDMF, FSK or DTMF)."""

    number: str = ""
    name: str = ""
    number_absent: str = ""  # "O" unavailable / "P" private
    name_absent: str = ""
    when: str = ""  # MMDDHHMM as sent
    checksum_ok: bool = True


class CallerIdDecoder(Protocol):
    def reset(self) -> None:
        """Forget everything: a new caller-ID window starts."""

    def feed(self, samples: Samples) -> CallerIdRecord | None:
        """Push 8 kHz audio; returns a record once a whole message was received (then nothing more)."""


@dataclass(frozen=True)
class ToneHit:
    """The detector recognised a disconnect signal that began at ``start_pts`` (leg time)."""

    kind: str  # "busy", "reorder", "dial"
    start_pts: int


class SupervisionDetector(Protocol):
    def reset(self) -> None: ...

    def feed(self, frame: AudioFrame) -> ToneHit | None:
        """Push one 20 ms frame of an answered call; a hit is reported once."""


class CallerIdDecoderFactory(Protocol):
    def __call__(self, standard: str) -> CallerIdDecoder:
        """``standard``: "bell202", "v23", "dtmf", "bell202+dtmf" or "v23+dtmf" (FxoConfig.cid_standard)."""


class SupervisionDetectorFactory(Protocol):
    def __call__(self, country: str) -> SupervisionDetector: ...
