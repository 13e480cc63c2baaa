"""Settings of a voice-modem line (frozen; every field documented)."""

from __future__ import annotations

from dataclasses import dataclass

# DLE event code → RemoteHangup.reason. Strongest signals first (HARDWARE.md §1.6).
DEFAULT_HANGUP_EVENTS: tuple[tuple[str, str], ...] = (
    ("l", "cpc"),  # loop-current interruption
    ("b", "busy-tone"),
    ("d", "dial-tone"),
    ("s", "silence"),  # no voice since the start of receive, then +VSD silence
    ("q", "silence"),  # voice, then +VSD silence
    ("H", "handset-off-hook"),  # a local handset picked up
    ("P", "extension-off-hook"),  # an extension picked up (Conexant -STE bit 1)
    ("R", "ring"),  # ringing again: we are not off-hook any more
)
POLARITY_EVENT = ("L", "polarity")  # a line reversal, where the exchange signals disconnect that way (UK, EU)


@dataclass(frozen=True)
class ModemConfig:
    """One voice modem on one analog line."""

    device: str  # /dev/ttyACM0, a udev symlink such as /dev/modem-line1, or a pyserial URL
    name: str = "modem"  # the line's name (routing, events)
    number: str = ""  # the line's own number (IncomingCall.called)
    baudrate: int = 115200  # 57600 is too slow for 8-bit audio on a real UART; CDC-ACM ignores it
    rtscts: bool = True  # hardware flow control (AT+IFC=2,2 where the chip has it). Never XON/XOFF.
    profile: str | None = None  # usr5637 | cx93010 | intel | v253; None: detect from ATI0/ATI3/+FMM?
    country: str | None = None  # AT+GCI T.35 code, e.g. "B4" (UK)
    codec_preference: tuple[str, ...] | None = None  # ULAW/ALAW/LINEAR16/LINEAR8; None: the profile's
    pcm8_signed: bool | None = None  # override the profile's sign convention of 8-bit linear
    exit_triple_dle: bool | None = None  # leave VTX/VRX with DLE DLE DLE x at once; None: the profile's
    extra_init: tuple[str, ...] = ()  # more AT commands after init, e.g. ("AT!4886=02",)
    rx_gain: int | None = None  # AT+VGR (128 nominal)
    tx_gain: int | None = None  # AT+VGT
    offer_after_rings: int = 2  # IncomingCall at this ring when no caller ID came before it
    answer_after_rings: int = 2  # go off-hook no earlier than this ring (caller ID is in by then)
    ring_timeout_s: float = 8.0  # no RING for this long while ringing: the caller gave up
    cid_settle_s: float = 0.6  # caller-ID record complete this long after its last line
    tx_lead_ms: int | None = None  # audio kept queued in the modem during +VTX; None: the profile's
    tx_lead_max_ms: int = 800  # each DLE u (underrun) adds tx_lead_step_ms, up to this
    tx_lead_step_ms: int = 40
    barge_in: bool = True  # a digit during +VTX drops the queued audio (DLE CAN DLE ETX)
    hangup_events: tuple[tuple[str, str], ...] = DEFAULT_HANGUP_EVENTS
    modem_silence_s: float = 7.0  # AT+VSD silence interval (DLE s / DLE q); 0: off
    silence_timeout_s: float = 7.0  # software silence supervision on the received audio; 0: off
    silence_threshold: float = 200.0  # mean |sample| of a 20 ms frame below which it is silent
    max_call_s: float = 1800.0  # hard cap on a call
    polarity_guard_ms: int = 600  # a reversal (DLE L) closer than this to the answer is not a disconnect
    reinit_after_call: bool = True  # ATZ and the settings again after each call (no stale state)
    command_timeout_s: float = 2.0
    start_timeout_s: float = 20.0  # Line.start waits this long for the modem to initialise
    reopen_backoff_s: tuple[float, float] = (0.5, 10.0)  # first and largest delay between re-opens

    def __post_init__(self) -> None:
        if self.answer_after_rings < 1 or self.offer_after_rings < 1:
            raise ValueError("rings are counted from 1")
        if self.modem_silence_s < 0 or self.silence_timeout_s < 0 or self.max_call_s <= 0:
            raise ValueError("durations must be positive (0 disables a silence timer)")
        if self.tx_lead_ms is not None and not 20 <= self.tx_lead_ms <= self.tx_lead_max_ms:
            raise ValueError("tx_lead_ms must be between 20 and tx_lead_max_ms")
        for code, _ in self.hangup_events:
            if len(code) != 1:
                raise ValueError(f"hang-up event codes are single DLE characters, got {code!r}")

    @property
    def vsd_sdi(self) -> int:
        return round(self.modem_silence_s * 10)
