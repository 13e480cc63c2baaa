"""The Line interface that every driver (sip, modem, fxo, virtual) implements.

Threading contract
------------------
* A driver owns its device on its own thread(s). ``start`` returns once the line is usable (or
  raises :class:`LineError`); events are delivered by calling the ``sink`` given to ``start`` **on
  the driver's thread** — the sink must not block (the daemon forwards them to its control loop
  with ``call_soon_threadsafe``).
* Commands (``answer``, ``hangup``, ``send_digits``, ``dial``) may be called from any thread; the
  driver marshals them onto its own thread and returns without waiting for the device (except where
  noted). Failures show up later as events.

Media contract
--------------
* The device owns the clock. Every 20 ms of leg time the driver calls ``port.push_rx(frame)`` with the
  audio it received (an all-zero frame when the device has none, e.g. a half-duplex modem while it
  transmits), then ``port.pull_tx(pts)`` for the 160 samples to send. Both are called on the driver's
  media thread and never block. ``pts`` counts samples since the leg was answered or connected.
* ``port.tx_active`` tells a half-duplex driver (voice modem) whether the runtime has audio to send
  (prompt, tones, bridged audio), so that it can switch between receive and transmit.
* Out-of-band digits (RFC 4733, SIP INFO, modem DLE events) arrive as :class:`DigitReceived` events.
  In-band DTMF detection runs on the received audio in the media pipeline, not in the driver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np

from media.frame import FRAME_SAMPLES, AudioFrame, Samples

log = logging.getLogger(__name__)


class LineError(Exception):
    """A line could not do what was asked (device missing, not supported, refused)."""


class FramePort(Protocol):
    """A leg's media attachment, implemented by the runtime (see module docstring)."""

    def push_rx(self, frame: AudioFrame) -> None: ...

    def pull_tx(self, pts: int) -> Samples: ...

    @property
    def tx_active(self) -> bool: ...


# ------------------------------------------------------------------------------------------ events
class DigitSource(StrEnum):
    RFC4733 = "rfc4733"
    SIP_INFO = "sip-info"
    MODEM = "modem"  # DLE digit events from a voice modem's own detector
    INBAND = "inband"  # media/dtmf on the received audio


@dataclass(frozen=True)
class LineEvent:
    line: str
    leg_id: str


@dataclass(frozen=True)
class IncomingCall(LineEvent):
    """A new inbound call is offered (SIP INVITE accepted for routing, or an analog line ringing).

    For analog lines caller ID may arrive later as :class:`CallerIdReceived`.
    """

    caller: str  # E.164 where known, "" when unknown, "anonymous" when withheld
    called: str  # the dialled number / request-URI user, or the line's configured number
    caller_name: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)  # X- headers (and User-to-User, Diversion)
    remote: str = ""  # signalling source address ("ip:port") or device path
    request_uri_host: str = ""  # SIP Request-URI host (for RequestUriHostname rules); "" on analog lines


@dataclass(frozen=True)
class CallerIdReceived(LineEvent):
    caller: str
    caller_name: str = ""
    number_absent: str = ""  # "O" unavailable / "P" private
    checksum_ok: bool = True


@dataclass(frozen=True)
class Ringing(LineEvent):
    """The far end of an outbound leg is ringing (180/183), or an analog line rang again."""

    count: int = 0


@dataclass(frozen=True)
class Answered(LineEvent):
    """An outbound leg was answered; media flows from now on."""


@dataclass(frozen=True)
class CallFailed(LineEvent):
    """An outbound leg did not connect, or an inbound leg could not be answered."""

    sip_code: int  # 486 busy, 480 no answer / unavailable, 404, 503 ...
    reason: str = ""


@dataclass(frozen=True)
class RemoteHangup(LineEvent):
    """The far end went away (BYE, CANCEL while ringing, loop-current drop, busy tone, RTP timeout...)."""

    sip_code: int = 0  # 0 normal clearing
    # "bye", "cancel", "abandoned", "cpc", "busy-tone", "dial-tone", "rtp-timeout", "device-lost",
    # "lost" (SIP: the pjsua call slot was taken from the leg)
    reason: str = ""
    # Leg time (pts) where the disconnect signal began (busy/reorder/dial tone, silence timeout): audio from
    # here on is the line, not the caller, and a recording in progress is cut there. None: cut at the end.
    tail_start_pts: int | None = None


@dataclass(frozen=True)
class DigitReceived(LineEvent):
    digit: str  # one of 0-9 * # A-D
    source: DigitSource
    start_pts: int | None = None  # leg time of the key press, when the driver knows it
    end_pts: int | None = None


@dataclass(frozen=True)
class LineStatus(LineEvent):
    """Line-level state: ``leg_id`` is "" for these."""

    state: str  # "up", "down", "recovering"
    detail: str = ""


EventSink = Callable[[LineEvent], None]


def deliver(sink: EventSink | None, event: LineEvent, line: str) -> None:
    """Give ``event`` to the runtime's sink; a failing sink is logged and never stops the driver."""
    if sink is None:
        return
    try:
        sink(event)
    except Exception:
        log.exception("%s: event sink failed on %s", line, type(event).__name__)


# ------------------------------------------------------------------------------------------ the line
@runtime_checkable
class Line(Protocol):
    name: str
    kind: str  # "sip", "modem", "fxo", "virtual"

    def start(self, sink: EventSink) -> None:
        """Open the device / bind the transport; return when ready to take calls."""

    def stop(self) -> None:
        """Hang up every leg and release the device. Idempotent."""

    def answer(self, leg_id: str, port: FramePort) -> None:
        """Answer an offered inbound leg (200 OK / go off-hook) and attach its media."""

    def hangup(self, leg_id: str, sip_code: int = 0) -> None:
        """End a leg: BYE, or reject with ``sip_code`` if not answered (480 when 0); on-hook on analog."""

    def send_digits(self, leg_id: str, digits: str, tone_ms: int = 250, gap_ms: int = 100) -> bool:
        """Send DTMF out of band if the line can (RFC 4733, modem +VTS). False: the runtime must
        generate the tones in-band through the leg's port instead."""

    def dial(self, leg_id: str, to: str, caller_id: str, headers: Mapping[str, str], port: FramePort,
             timeout_s: float) -> None:
        """Place an outbound leg with the given id. Progress arrives as Ringing / Answered /
        CallFailed events. Raises LineError if this line cannot place calls."""


# ------------------------------------------------------------------------------------------ helpers
class SilencePort:
    """A FramePort that keeps what it receives and sends silence (or queued samples).

    For driver tests and tools; the daemon's ports live in the runtime.
    """

    def __init__(self) -> None:
        self.received: list[AudioFrame] = []
        self._tx: list[Samples] = []
        self._tx_pos = 0

    def push_rx(self, frame: AudioFrame) -> None:
        self.received.append(frame)

    def queue_tx(self, samples: Samples) -> None:
        for i in range(0, len(samples), FRAME_SAMPLES):
            chunk = samples[i:i + FRAME_SAMPLES]
            if len(chunk) < FRAME_SAMPLES:
                chunk = np.concatenate([chunk, np.zeros(FRAME_SAMPLES - len(chunk), dtype=np.int16)])
            self._tx.append(chunk)

    def pull_tx(self, pts: int) -> Samples:
        if self._tx_pos < len(self._tx):
            self._tx_pos += 1
            return self._tx[self._tx_pos - 1]
        return np.zeros(FRAME_SAMPLES, dtype=np.int16)

    @property
    def tx_active(self) -> bool:
        return self._tx_pos < len(self._tx)
