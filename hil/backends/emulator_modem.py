"""Path A in CI: the V.253 voice-modem emulator (``drivers/emulators/modem.py``) on a real pty.

The daemon's modem driver talks to the emulated modem exactly as to a USB stick: by default a Conexant
CX93010 (most "USB 2.0 56K" sticks; ``profile`` picks another of ``drivers.emulators.modem.EMU_PROFILES``).
What the emulator models, and so what this backend can honestly offer:

* ringing on a cadence, caller ID as the modem's formatted text (``NMBR = ...``) after the first RING
  or before it (UK modems), ``P``/``O`` absence reasons, garbled lines among the fields; the modem
  decodes FSK and DTMF CLIP itself, so FSK faults (bad checksum, frequency offsets) are not visible here
  and DTMF CLIP looks like any other caller ID: neither is offered (``cid-faults``, ``cid-dtmf``);
* the caller's audio, and digits as the modem's DSP reports them (``DLE`` events): nominal key presses
  only — the DSP is simulated as events, so no in-band, off-nominal or talk-off DTMF;
* the far end going away as the modem reports it: loop-current drop (``DLE l``), busy / reorder / dial
  tone, silence, a polarity reversal (``DLE L``; gatewayd's modem line takes it as a disconnect by
  default, ``hangup_on_polarity``);
* an extension picked up during the call (``DLE P``, Conexant's ``-STE`` extension detection);
* the USB stick vanishing and re-enumerating, garbage on the serial line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from drivers.emulators import modem as emu
from drivers.emulators.line_audio import TONE_PLANS, tone_samples
from hil.backends.common import QUICK_RING, EventLog, HeardAudio, HookWatcher, Unsupported, scaled
from hil.dut import DutLine, DutSettings
from hil.simulator import NO_FAULTS, CallerId, CidFaults, CidMode, Disconnect, LineConfig, Recording, SimCall, SimEvent
from hil.tolerances import TOLERANCE_S
from media.frame import SAMPLE_RATE, Samples

_SIGNALS: dict[Disconnect, emu.Signal] = {
    Disconnect.CPC: "cpc", Disconnect.POLARITY: "polarity", Disconnect.BUSY: "busy",
    Disconnect.REORDER: "reorder", Disconnect.DIAL_TONE: "dial", Disconnect.SILENCE: "silence"}


class EmulatorModem:
    capabilities = frozenset({"ring", "cid", "cid-fsk", "cid-before-ring", "cid-absent", "cid-garbage",
                              "disconnect-cpc", "disconnect-polarity", "disconnect-tones", "disconnect-silence",
                              "dtmf", "call-waiting", "device-faults", "extension-pickup"})
    tolerance_s = TOLERANCE_S[("emulator", "modem")]
    path = "modem"

    def __init__(self, workdir: Path, profile: str = "cx93010") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.link = workdir / "ttyMODEM0"
        self.modem = emu.FakeV253Modem(profile, link=self.link, ring_on_s=QUICK_RING[0], ring_off_s=QUICK_RING[1])
        self.modem.start()
        self.config = LineConfig(ring_cadence=QUICK_RING)
        self.log = EventLog()
        self.heard = HeardAudio()
        self._watcher = HookWatcher(self.log, lambda: self.modem.device.off_hook)
        self._call: SimCall | None = None
        self._rings_before = 0
        self._tx_at_reset = 0

    def close(self) -> None:
        self._watcher.stop()
        self.modem.stop()

    # ------------------------------------------------------------------ the DUT's side
    def dut_line(self, settings: DutSettings) -> DutLine:
        return DutLine({"type": "modem", "name": "modem0", "device": str(self.link), "rtscts": False,
                        "number": "5550100", "rings_before_answer": settings.rings_before_answer,
                        "country": self.config.country, "silence_hangup_s": settings.silence_hangup_s,
                        "max_call_s": settings.max_call_s, "detect_tones": True})

    # ------------------------------------------------------------------ provisioning
    def configure(self, config: LineConfig) -> None:
        cadence = config.ring_cadence or (2.0, 4.0)
        if len(cadence) != 2:
            raise Unsupported("the modem emulator rings one on/off pair per cycle")
        if config.cid in (CidMode.ETSI_DTMF,):
            raise Unsupported("the modem decodes DTMF CLIP itself: not modelled")
        with self.modem.lock:
            self.modem.device.ring_on_s, self.modem.device.ring_off_s = cadence
            self.modem.device.cid_before_ring = config.cid is CidMode.ETSI_FSK_BEFORE_RING
        self.config = config

    # ------------------------------------------------------------------ inbound call
    def ring(self, caller_id: CallerId | None = None, *, max_rings: int = 10,
             cid_faults: CidFaults = NO_FAULTS) -> SimCall:
        if cid_faults.bad_checksum or cid_faults.truncated or cid_faults.freq_offset_pct or cid_faults.baud_offset_pct:
            raise Unsupported("the modem reports decoded caller ID: FSK faults are not modelled")
        if cid_faults.after_ring != 1:
            raise Unsupported("the modem emulator sends caller ID around the first ring only")
        cid = None
        if caller_id is not None and self.config.cid is not CidMode.NONE:
            when = caller_id.when
            name = caller_id.name if self.config.cid is not CidMode.BELL202_SDMF else None
            cid = emu.CallerId(number=caller_id.number, name=name,
                               date=when.strftime("%m%d") if when else "0117",
                               time=when.strftime("%H%M") if when else "1330",
                               number_absent=caller_id.number_absent,
                               name_absent=caller_id.name_absent if self.config.cid is not CidMode.BELL202_SDMF
                               else None)
        self._call = SimCall(caller_id)
        self.log.add("ring", (caller_id.number or "") if caller_id else "")
        with self.modem.lock:
            self._rings_before = self.modem.device.rings_sent
        self.modem.ring(cid, rings=max_rings)
        return self._call

    def ring_with_garbled_cid(self, caller_id: CallerId, max_rings: int = 10) -> SimCall:
        """Caller ID with a garbled line among the fields (line noise during the spill)."""
        self._call = SimCall(caller_id)
        with self.modem.lock:
            self._rings_before = self.modem.device.rings_sent
        self.modem.ring(emu.CallerId(number=caller_id.number, name=caller_id.name, garbage=True), rings=max_rings)
        return self._call

    # ------------------------------------------------------------------ observation
    def wait_answered(self, timeout: float) -> bool:
        ok = self.modem.wait_until(lambda d: d.off_hook, timeout)
        if ok and self._call is not None and self._call.answered_at is None:
            with self.modem.lock:
                self._call.rings = self.modem.device.rings_at_off_hook - self._rings_before
            self._call.answered_at = self.log.add("answered").t
        return ok

    def wait_on_hook(self, timeout: float) -> bool:
        return self.modem.wait_until(lambda d: not d.off_hook, timeout)

    @property
    def off_hook(self) -> bool:
        return self.modem.device.off_hook

    def events(self) -> Iterator[SimEvent]:
        return iter(self.log.items())

    # ------------------------------------------------------------------ far-end media
    def play(self, audio: Samples, *, level_dbm0: float | None = None, wait: bool = True) -> None:
        samples = scaled(audio, level_dbm0)
        start = self.modem.play(samples)
        if wait:
            end = start + len(samples)
            self.modem.wait_until(lambda d: d.line_pos >= end or not d.off_hook, len(samples) / SAMPLE_RATE + 5)

    def send_dtmf(self, digits: str, *, on_ms: int = 80, off_ms: int = 80, level_dbm0: float = -10.0,
                  twist_db: float = 0.0, freq_offset_pct: float = 0.0, inband: bool = True) -> None:
        if twist_db or freq_offset_pct or on_ms < 40:
            raise Unsupported("the modem's DTMF detector is simulated as events: nominal key presses only")
        start = self.modem.send_dtmf(digits, on_ms=on_ms, off_ms=off_ms)
        end = start + len(digits) * (on_ms + off_ms) * 8
        self.modem.wait_until(lambda d: d.line_pos >= end or not d.off_hook, 5 + len(digits))

    def send_tone(self, tone: str, seconds: float) -> None:
        plan = TONE_PLANS[self.config.country if self.config.country in TONE_PLANS else "us"]
        self.play(tone_samples(plan["dial" if tone == "dial-tone" else tone], seconds))

    def far_end_audio(self) -> Samples:
        """Everything the modem played to the line since the last reset (+VTX sessions end to end)."""
        return self.modem.transmitted()[self._tx_at_reset:]

    def record_far_end(self) -> AbstractContextManager[Recording]:
        return self.heard.recording(self.modem.transmitted)

    # ------------------------------------------------------------------ teardown
    def hang_up(self, *, how: Disconnect | None = None) -> None:
        how = how or self.config.disconnect
        if how not in _SIGNALS:
            raise Unsupported(f"modem: disconnect {how}")
        self.modem.hang_up(_SIGNALS[how])
        ev = self.log.add("far-end-hang-up", str(how))
        if self._call is not None:
            self._call.ended_at = ev.t

    def abandon(self) -> None:
        self.modem.abandon()
        self.log.add("abandon")

    def reset(self) -> None:
        self.modem.abandon()
        if self.modem.device.off_hook:
            self.modem.hang_up("cpc")
            self.modem.wait_until(lambda d: not d.off_hook, 10)
        self._call = None
        self._tx_at_reset = len(self.modem.transmitted())
        self.heard.clips.clear()
        self.log.reset()

    # ------------------------------------------------------------------ device faults (emulator only)
    def unplug(self) -> None:
        self.modem.vanish()
        self.log.add("unplugged")

    def replug(self) -> None:
        self.modem.reappear()
        self.log.add("replugged")

    def garbage(self, data: bytes) -> None:
        self.modem.garbage(data)

    def call_waiting(self, caller_id: CallerId) -> None:
        """A call-waiting caller-ID spill during the call, as the modem reports it (a ``DLE X`` packet)."""
        text = f"NMBR={caller_id.number or 'O'}"
        with self.modem.lock:
            self.modem.device.garbage(b"\x10X" + text.encode() + b"\x10.")

    def extension_pickup(self) -> None:
        """An extension goes off-hook: the modem reports ``DLE P`` (Conexant's -STE extension detection)."""
        self.modem.send_event("P")
        self.log.add("extension-off-hook")

    def ready_for_calls(self, timeout: float) -> bool:
        """The modem was initialised by the DUT (voice mode, caller ID on)."""
        return self.modem.wait_until(lambda d: d.fclass == 8 and d.vcid == 1 and d.mode == "command", timeout)

