"""Path B in CI: the FXO-board emulator (``drivers/emulators/fxo.py``) on a real pty, with its line audio
through a FIFO-backed ALSA card (``drivers/emulators/alsa_fifo.py``).

The emulator synthesises everything on the line, so the daemon's own detectors run on it: FSK caller
ID (Bell 202 after the first or a later ring, SDMF/MDMF, absence reasons; V.23 before the first ring
after a line reversal and DT-AS, as BT sends it) with faults (bad checksum, truncation, frequency and
baud offsets), DTMF CLIP (ETSI digits before the ring), DTMF with any level, twist, frequency offset
and duration, call-progress tones per country, a call-waiting burst (SAS, CAS and FSK) while off-hook,
and every disconnect signal: loop-current drop, polarity reversal, busy / reorder / dial tone, silence.
The board can vanish and re-enumerate, and send garbage.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

import numpy as np

from drivers.emulators import fxo as emu
from drivers.emulators.line_audio import DTAS, TONE_PLANS, CadencedTone, ToneSpec, dtmf, tone_samples
from hil.backends.common import QUICK_RING, EventLog, HeardAudio, HookWatcher, Unsupported, scaled
from hil.dut import DutLine, DutSettings
from hil.simulator import NO_FAULTS, CallerId, CidFaults, CidMode, Disconnect, LineConfig, Recording, SimCall, SimEvent
from hil.tolerances import TOLERANCE_S
from media import callerid
from media.frame import SAMPLE_RATE, Samples, to_int16

_HOW = {Disconnect.CPC: "cpc", Disconnect.POLARITY: "polarity", Disconnect.BUSY: "busy",
        Disconnect.REORDER: "reorder", Disconnect.DIAL_TONE: "dial", Disconnect.SILENCE: "silence"}


def dtmf_clip(cid: emu.CallerId, standard: str) -> Samples:
    """ETSI EN 300 659-1 DTMF CLIP: ``A`` + number + ``C`` (or ``D`` + absence code + ``C``), 70/70 ms."""
    if cid.number:
        digits = "A" + cid.number + "C"
    else:
        digits = "D" + ("1" if cid.number_absent == "P" else "2") + "C"  # 1: private, 2: unavailable
    return dtmf(digits, 70, 70, -10.0)


class EmulatorFxo:
    capabilities = frozenset({"ring", "cid", "cid-fsk", "cid-before-ring", "cid-absent", "cid-dtmf", "cid-faults",
                              "cid-late", "disconnect-cpc", "disconnect-polarity", "disconnect-tones",
                              "disconnect-silence", "dtmf", "inband-dtmf", "offnominal-dtmf", "call-waiting",
                              "device-faults"})
    tolerance_s = TOLERANCE_S[("emulator", "fxo")]
    path = "fxo"

    def __init__(self, workdir: Path) -> None:
        self.emu = emu.FxoEmulator(workdir, device="hilfxo")
        self.emu.start()
        self.config = LineConfig(ring_cadence=QUICK_RING)
        self.log = EventLog()
        self.heard = HeardAudio()
        self._watcher = HookWatcher(self.log, lambda: self.emu.off_hook)
        self._call: SimCall | None = None
        self._events_at_ring = 0
        self._first_call = 0

    def close(self) -> None:
        self._watcher.stop()
        self.emu.stop()

    # ------------------------------------------------------------------ the DUT's side
    def dut_line(self, settings: DutSettings) -> DutLine:
        c = self.config
        cid = {CidMode.NONE: "none", CidMode.ETSI_FSK_BEFORE_RING: "v23", CidMode.ETSI_DTMF: "dtmf"}.get(c.cid,
                                                                                                 "bell202")
        return DutLine({"type": "fxo", "name": "fxo0", "control_device": str(self.emu.serial_path),
                        "audio_device": self.emu.alsa.device, "audio_rate": self.emu.rate, "number": "5550100",
                        "rings_before_answer": settings.rings_before_answer, "country": c.country,
                        "caller_id": cid, "cid_after_ring": settings.cid_after_ring,
                        "cpc_min_ms": max(100, c.cpc_ms * 2 // 3),
                        "hangup_on_polarity": c.disconnect is Disconnect.POLARITY,
                        "silence_hangup_s": settings.silence_hangup_s, "max_call_s": settings.max_call_s,
                        "dtmf_inband": True},
                       env=self.emu.alsa.env())

    # ------------------------------------------------------------------ provisioning
    def configure(self, config: LineConfig) -> None:
        if config.country not in TONE_PLANS:
            raise Unsupported(f"no tone plan for {config.country}")
        self.emu.country = config.country
        self.config = config

    # ------------------------------------------------------------------ inbound call
    def ring(self, caller_id: CallerId | None = None, *, max_rings: int = 10,
             cid_faults: CidFaults = NO_FAULTS) -> SimCall:
        c = self.config
        cid = None
        renderer: emu.CidRenderer | None = None
        timing = "before-ring" if c.cid in (CidMode.ETSI_FSK_BEFORE_RING, CidMode.ETSI_DTMF) else "after-ring"
        standard = "v23" if c.cid is CidMode.ETSI_FSK_BEFORE_RING else "bell202"
        if caller_id is not None and c.cid is not CidMode.NONE:
            cid = emu.CallerId(number=caller_id.number, name=caller_id.name, when=caller_id.when or datetime.now(),
                               number_absent=caller_id.number_absent, name_absent=caller_id.name_absent,
                               sdmf=c.cid is CidMode.BELL202_SDMF)
            if c.cid is CidMode.ETSI_DTMF:
                renderer = dtmf_clip
            elif cid_faults != NO_FAULTS:
                renderer = emu.FskCallerId(bad_checksum=cid_faults.bad_checksum,
                                           truncate=12 if cid_faults.truncated else None,
                                           freq_error=cid_faults.freq_offset_pct / 100,
                                           baud_error=cid_faults.baud_offset_pct / 100)
        self._call = SimCall(caller_id)
        self._events_at_ring = len(self.emu.events)
        self.log.add("ring", (caller_id.number or "") if caller_id else "")
        self.emu.ring(cid, rings=max_rings, cadence=c.ring_cadence, cid_timing=timing,  # type: ignore[arg-type]
                      cid_after_ring=cid_faults.after_ring, standard=standard, dtas=True, renderer=renderer)
        return self._call

    # ------------------------------------------------------------------ observation
    def wait_answered(self, timeout: float) -> bool:
        ok = self.emu.wait_off_hook(timeout)
        if ok and self._call is not None and self._call.answered_at is None:
            self._call.rings = sum(1 for _, w in self.emu.events[self._events_at_ring:] if w == "RING 1")
            self._call.answered_at = self.log.add("answered").t
        return ok

    def wait_on_hook(self, timeout: float) -> bool:
        return self.emu.wait_on_hook(timeout)

    @property
    def off_hook(self) -> bool:
        return self.emu.off_hook

    def events(self) -> Iterator[SimEvent]:
        return iter(self.log.items())

    # ------------------------------------------------------------------ far-end media
    def play(self, audio: Samples, *, level_dbm0: float | None = None, wait: bool = True) -> None:
        h = self.emu.play(scaled(audio, level_dbm0))
        if wait:
            self._wait_done(h, len(audio) / SAMPLE_RATE + 5)

    def _wait_done(self, h: emu.PlayHandle, timeout: float) -> None:
        """Until the far end has played ``h``, or the line went on-hook (which drops what is queued)."""
        end = time.monotonic() + timeout
        while not h.done.wait(0.02) and self.emu.off_hook and time.monotonic() < end:
            pass

    def send_dtmf(self, digits: str, *, on_ms: int = 80, off_ms: int = 80, level_dbm0: float = -10.0,
                  twist_db: float = 0.0, freq_offset_pct: float = 0.0, inband: bool = True) -> None:
        h = self.emu.send_dtmf(digits, on_ms=on_ms, off_ms=off_ms, level_dbm0=level_dbm0, twist_db=twist_db,
                               freq_offset_pct=freq_offset_pct)
        self._wait_done(h, len(digits) * (on_ms + off_ms) / 1000 + 5)

    def send_tone(self, tone: str, seconds: float) -> None:
        h = self.emu.send_tone("dial" if tone == "dial-tone" else tone, seconds)
        self._wait_done(h, seconds + 5)

    def record_far_end(self) -> AbstractContextManager[Recording]:
        return self.heard.recording(self._heard_all)

    def far_end_audio(self) -> Samples:
        """Everything the DUT transmitted since the last reset (for ``--results``)."""
        return self._heard_all()

    def _heard_all(self) -> Samples:
        """What the DUT transmitted in every off-hook period since the last reset, end to end."""
        parts = [self.emu.record_far_end(i) for i in range(self._first_call, len(self.emu.calls))]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)

    # ------------------------------------------------------------------ teardown
    def hang_up(self, *, how: Disconnect | None = None) -> None:
        how = how or self.config.disconnect
        if how not in _HOW:
            raise Unsupported(f"fxo: disconnect {how}")
        then = {"busy": "busy", "reorder": "reorder", "dial": "dial"}.get(self.config.tone_after_disconnect)
        self.emu.hang_up(_HOW[how], cpc_ms=self.config.cpc_ms, then=then)
        ev = self.log.add("far-end-hang-up", str(how))
        if self._call is not None:
            self._call.ended_at = ev.t

    def abandon(self) -> None:
        self.emu.abandon()
        self.log.add("abandon")

    def reset(self) -> None:
        self.emu.abandon()
        if self.emu.off_hook:
            self.emu.hang_up("cpc", cpc_ms=800)
            self.emu.wait_on_hook(10)
        self._call = None
        self._first_call = len(self.emu.calls)
        self.heard.clips.clear()
        self.log.reset()

    # ------------------------------------------------------------------ emulator-only
    def unplug(self) -> None:
        self.emu.vanish()
        self.log.add("unplugged")

    def replug(self) -> None:
        self.emu.reappear()
        self.log.add("replugged")

    def garbage(self, data: bytes) -> None:
        self.emu.garbage(data)

    def call_waiting(self, caller_id: CallerId) -> None:
        """A call-waiting burst on the far-end audio: SAS (440 Hz, 300 ms), CAS (2130+2750 Hz, 80 ms), then
        the Bell 202 MDMF spill a CO sends after the CPE's ACK (sent anyway: the DUT must ignore it)."""
        sas = tone_samples(ToneSpec((440.0,), (-13.0,)), 0.3)
        gap = np.zeros(round(0.1 * SAMPLE_RATE), dtype=np.int16)
        cas = to_int16(CadencedTone(DTAS).render(round(0.08 * SAMPLE_RATE)))
        msg = callerid.Message.mdmf(number=caller_id.number, name=caller_id.name, when=datetime.now())
        spill = callerid.modulate(msg, "bell202", level_dbm0=-13.5)
        self.play(np.concatenate([sas, gap, cas, gap, gap, np.asarray(spill, dtype=np.int16)]))

    def ready_for_calls(self, timeout: float) -> bool:
        return self.emu.wait_event("HELLO", timeout, count=1)
