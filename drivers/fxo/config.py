"""Configuration of an FXO line (path B): the control port, the sound card and line supervision."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CidTiming(StrEnum):
    """When the caller-ID spill is on the line (HARDWARE.md §4)."""

    NONE = "none"
    AFTER_RING = "after-ring"  # Bellcore / most of ETSI: FSK in the silence after ring cycle `cid_after_ring`
    BEFORE_RING = "before-ring"  # UK (BT SIN227) and ETSI with line reversal (+ DT-AS): FSK, then the first ring


CID_STANDARDS = ("bell202", "v23", "dtmf", "bell202+dtmf", "v23+dtmf")


@dataclass(frozen=True)
class FxoConfig:
    """One FXO board plus its sound card. Durations are seconds unless the name says ``_ms``."""

    name: str = "fxo"
    # -- control port (pyserial path or URL, e.g. "/dev/serial/by-id/usb-...-if00" or "loop://")
    device: str = "/dev/ttyACM0"
    baudrate: int = 115200
    handshake_timeout_s: float = 2.0  # HELLO → HELLO FXO/1
    hook_ack_timeout_s: float = 2.0  # HOOK OFF/ON → OK; no reply means the board is unresponsive
    reopen_backoff_s: tuple[float, float] = (0.25, 8.0)  # first and longest delay between reopen attempts
    keepalive_s: float = 10.0  # idle and nothing heard for this long: STATUS must be answered (0 disables)
    # -- sound card (PortAudio device names; an exact name wins, else a unique substring)
    audio_device: str = "default"
    audio_output_device: str | None = None  # None: the same device as audio_device
    audio_rate: int = 8000  # the card's rate; anything else is resampled to/from 8 kHz in the media thread
    capture_ring_frames: int = 25  # 500 ms between the PortAudio callback and the media thread
    playout_prefill_frames: int = 2  # 40 ms of playout cushion against scheduling jitter
    audio_stall_s: float = 1.0  # no capture for this long: the sound card is gone
    # -- inbound call presentation
    called_number: str = ""  # IncomingCall.called (the line's own number)
    rings_to_answer: int = 2  # go off-hook no earlier than this ring cycle
    cid: CidTiming = CidTiming.AFTER_RING
    # "bell202" (NANP FSK), "v23" (ETSI, BT FSK), "dtmf" (ETSI DTMF CLIP, before the first ring), or an FSK
    # flavour "+dtmf" (whichever arrives). With DTMF the decoder also listens while the line is idle, since
    # DTMF CLIP often comes with no alerting signal; a whole message then starts the call (before its ring).
    cid_standard: str = "bell202"
    cid_after_ring: int = 1  # AFTER_RING: the spill follows this ring cycle (2 for UK `sendcalleridafter=2`)
    cid_window_s: float = 4.0  # how long to listen for the spill after the ring ends (or the line reverses)
    # -- ring detection (edges come from the board, debounced there)
    ring_min_ms: int = 150  # shorter bursts are not rings (a CPC5621 pulses ~1 ms on a line reversal)
    ring_group_gap_ms: int = 1000  # bursts closer than this form one ring cycle (UK 0.4/0.2/0.4/2.0)
    ring_stuck_s: float = 6.0  # ring "on" longer than this: a lost RING 0, treat as off
    abandon_s: float = 8.0  # no ring for this long before answer: the caller gave up
    # -- remote hang-up supervision after answer
    cpc_min_ms: int = 600  # loop-current drop at least this long is a disconnect (DAHDI default)
    loop_settle_ms: int = 500  # after going off-hook, loop current must appear within this (+ cpc_min_ms)
    hangup_on_polarity: bool = False  # as DAHDI's hanguponpolarityswitch: only where the exchange does it
    polarity_guard_ms: int = 600  # reversals closer than this to the answer are not a disconnect
    hangup_on_tones: bool = True  # busy / reorder / dial tone from the call-progress detector
    country: str = "us"  # tone plan for the call-progress detector
    silence_timeout_s: float = 60.0  # 0 disables
    silence_threshold: float = 200.0  # mean |sample| of a 20 ms frame below this is silent (SPEC.md §4)
    max_call_s: float = 3600.0  # 0 disables

    def __post_init__(self) -> None:
        if self.rings_to_answer < 1 or self.cid_after_ring < 1:
            raise ValueError("rings_to_answer and cid_after_ring count from 1")
        if self.audio_rate < 8000 or self.audio_rate % 50:
            raise ValueError(f"audio_rate {self.audio_rate}: need >= 8000 Hz and a whole number of samples per 20 ms")
        if not self.reopen_backoff_s[0] > 0 or self.reopen_backoff_s[1] < self.reopen_backoff_s[0]:
            raise ValueError("reopen_backoff_s must be (first > 0, longest >= first)")
        if self.cid_standard not in CID_STANDARDS:
            raise ValueError(f"cid_standard {self.cid_standard!r}: one of {', '.join(CID_STANDARDS)}")
        if self.capture_ring_frames < 2 or self.playout_prefill_frames < 0:
            raise ValueError("capture_ring_frames >= 2 and playout_prefill_frames >= 0")

    @property
    def cid_on_idle(self) -> bool:
        """The caller-ID decoder listens while the line is idle (DTMF CLIP needs no alerting signal)."""
        return self.cid != CidTiming.NONE and self.cid_standard.endswith("dtmf")
