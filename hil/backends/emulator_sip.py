"""Path C in CI: a SIP far end on loopback calling the DUT's SIP trunk, built on ``drivers/sip`` (pjsua2)
— the same driver ``gatewayd call`` uses.

It offers what a SIP caller can do: the caller's number in ``From`` (``anonymous`` when withheld), the
caller's audio over G.711, DTMF in-band in that audio (any level, twist, offset and duration) or as
RFC 4733 events, CANCEL while ringing and BYE after the answer. No analog signalling: no caller-ID
spills, no loop current, no line tones as a disconnect, no device to unplug.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from drivers.emulators.line_audio import TONE_PLANS, dtmf, tone_samples
from drivers.line import Answered, CallFailed, LineEvent, RemoteHangup, Ringing
from gatewayd.testing.ports import free_port
from hil.backends.common import EventLog, FarEndPort, HeardAudio, Unsupported, scaled
from hil.dut import DutLine, DutSettings
from hil.simulator import NO_FAULTS, CallerId, CidFaults, Disconnect, LineConfig, Recording, SimCall, SimEvent
from hil.tolerances import TOLERANCE_S
from media.frame import SAMPLE_RATE, Samples


class EmulatorSip:
    capabilities = frozenset({"sip", "cid", "cid-absent", "dtmf", "inband-dtmf", "offnominal-dtmf", "rfc4733",
                              "disconnect-bye"})
    tolerance_s = TOLERANCE_S[("emulator", "sip")]
    path = "sip"

    def __init__(self, workdir: Path) -> None:
        from drivers.sip.config import SipTrunkConfig
        from drivers.sip.line import SipLine

        self.dut_port = free_port()
        self.line = SipLine(SipTrunkConfig(name="hil-far-end", bind_address="127.0.0.1", port=0,
                                           allowed_peers=("127.0.0.1",), rtp_timeout_s=0, local_user="hil"))
        self.config = LineConfig()
        self.log = EventLog()
        self.heard = HeardAudio()
        self._cond = threading.Condition()
        self._leg: str | None = None
        self._port = FarEndPort()
        self._heard: list[list[Samples]] = []  # what the far end heard in each of this scenario's calls
        self._state = "idle"  # idle, ringing, up, ended
        self._call: SimCall | None = None
        self.line.start(self._on_event)

    def close(self) -> None:
        self.line.stop()

    def _on_event(self, ev: LineEvent) -> None:
        with self._cond:
            if ev.leg_id != self._leg:
                return
            if isinstance(ev, Ringing):
                self.log.add("ringing")
            elif isinstance(ev, Answered):
                self._state = "up"
                self.log.add("off-hook")
            elif isinstance(ev, CallFailed):
                self._state = "ended"
                self.log.add("call-failed", f"{ev.sip_code} {ev.reason}")
            elif isinstance(ev, RemoteHangup):
                self._state = "ended"
                self.log.add("on-hook", ev.reason)
            self._cond.notify_all()

    # ------------------------------------------------------------------ the DUT's side
    def dut_line(self, settings: DutSettings) -> DutLine:
        return DutLine({"type": "sip", "name": "trunk", "bind_address": "127.0.0.1", "port": self.dut_port,
                        "allowed_peers": ["127.0.0.1/32"], "dtmf_inband": True, "rtp_timeout_s": 0})

    # ------------------------------------------------------------------ provisioning
    def configure(self, config: LineConfig) -> None:
        self.config = config

    # ------------------------------------------------------------------ inbound call
    def ring(self, caller_id: CallerId | None = None, *, max_rings: int = 10,
             cid_faults: CidFaults = NO_FAULTS) -> SimCall:
        if cid_faults != NO_FAULTS:
            raise Unsupported("sip: no caller-ID spill to corrupt")
        number = "anonymous"
        if caller_id is not None and caller_id.number:
            number = caller_id.number
        with self._cond:
            self._leg = uuid.uuid4().hex
            self._port = FarEndPort()
            self._heard.append(self._port.add_recorder())
            self._state = "ringing"
            self._call = SimCall(caller_id)
        self.log.add("ring", number)
        self.line.dial(self._leg, f"sip:5550100@127.0.0.1:{self.dut_port}", number, {}, self._port,
                       timeout_s=max_rings * 6.0)
        return self._call

    # ------------------------------------------------------------------ observation
    def wait_answered(self, timeout: float) -> bool:
        with self._cond:
            ok = self._cond.wait_for(lambda: self._state in ("up", "ended"), timeout) and self._state == "up"
        if ok and self._call is not None and self._call.answered_at is None:
            self._call.answered_at = self.log.add("answered").t
        return ok

    def wait_on_hook(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._state in ("idle", "ended"), timeout)

    @property
    def off_hook(self) -> bool:
        return self._state == "up"

    def events(self) -> Iterator[SimEvent]:
        return iter(self.log.items())

    # ------------------------------------------------------------------ far-end media
    def _wait_sent(self, timeout: float) -> None:
        self._port.wait_drained(lambda: self._state != "up", timeout)

    def play(self, audio: Samples, *, level_dbm0: float | None = None, wait: bool = True) -> None:
        self._port.enqueue(scaled(audio, level_dbm0))
        if wait:
            self._wait_sent(len(audio) / SAMPLE_RATE + 5)

    def send_dtmf(self, digits: str, *, on_ms: int = 80, off_ms: int = 80, level_dbm0: float = -10.0,
                  twist_db: float = 0.0, freq_offset_pct: float = 0.0, inband: bool = True) -> None:
        if not inband:
            assert self._leg is not None
            if not self.line.send_digits(self._leg, digits, tone_ms=on_ms, gap_ms=off_ms):
                raise Unsupported("the DUT did not offer RFC 4733")
            time.sleep(len(digits) * (on_ms + off_ms) / 1000 + 0.1)
            return
        self._port.enqueue(dtmf(digits, on_ms, off_ms, level_dbm0, twist_db, freq_offset_pct))
        self._wait_sent(len(digits) * (on_ms + off_ms) / 1000 + 5)

    def send_tone(self, tone: str, seconds: float) -> None:
        plan = TONE_PLANS[self.config.country if self.config.country in TONE_PLANS else "us"]
        self.play(tone_samples(plan["dial" if tone == "dial-tone" else tone], seconds))

    def record_far_end(self) -> AbstractContextManager[Recording]:
        return self.heard.recording(self._heard_all)

    def far_end_audio(self) -> Samples:
        """Everything the DUT sent since the last reset (for ``--results``)."""
        return self._heard_all()

    def _heard_all(self) -> Samples:
        parts = [chunk for call in list(self._heard) for chunk in list(call)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)

    # ------------------------------------------------------------------ teardown
    def hang_up(self, *, how: Disconnect | None = None) -> None:
        how = how or Disconnect.BYE
        if how is not Disconnect.BYE:
            raise Unsupported(f"sip: disconnect {how}")
        assert self._leg is not None
        self.line.hangup(self._leg)
        with self._cond:
            self._state = "ended"
        ev = self.log.add("far-end-hang-up", str(how))
        if self._call is not None:
            self._call.ended_at = ev.t

    def abandon(self) -> None:
        assert self._leg is not None
        self.line.hangup(self._leg)  # CANCEL while ringing
        with self._cond:
            self._state = "ended"
        self.log.add("abandon")

    def reset(self) -> None:
        if self._leg is not None and self._state in ("ringing", "up"):
            self.line.hangup(self._leg)
            self.wait_on_hook(5)
        with self._cond:
            self._leg = None
            self._heard.clear()
            self._state = "idle"
            self._call = None
        self.heard.clips.clear()
        self.log.reset()

    def ready_for_calls(self, timeout: float) -> bool:
        return True
