"""The ``lab`` backend: a SIP user agent that rings the DUT's analog line through an ATA's FXS port.

:class:`LabSimulator` implements :class:`hil.simulator.LineSimulator` for the bench of HARDWARE.md §5.3:
the test controller calls the ATA (Grandstream HT802 or similar) with gatewayd's own SIP trunk driver
(:class:`drivers.sip.line.SipLine` on pjsua2, the one ``gatewayd call`` uses); the ATA rings its FXS
port, which is wired to the Pi's FXO jack. What the simulator can see and do follows from that:

* **ring**: an INVITE; the caller ID (number, name) goes in From and the ATA sends it on the line in the
  scheme its active profile is set to. The ATA's clock sets the date/time field (``CallerId.when`` is
  not sent). A private number (``number_absent="P"``) is an anonymous From with ``Privacy: id``;
  "out of area" (``"O"``) and caller-ID faults would need the Teltone TLE-A, which this backend does not
  ring through yet (:mod:`hil.backends.tle_a` is the serial base for it): they are refused here.
* **answered / off-hook**: the ATA answers the INVITE (200 OK) when the DUT goes off-hook; a BYE from
  the ATA is the DUT going on-hook. Ring edges are not visible on SIP: ``SimCall.rings`` and the
  ``ring`` events after the first are *estimated* from the ring cadence (``extra["rings_estimated"]``).
* **far-end media**: audio, in-band DTMF (media's generator: level, twist, frequency offset, timing)
  and call-progress tones are sent as G.711 RTP and reach the line through the ATA's codec and jitter
  buffer; ``record_far_end`` keeps what the DUT sent back. Digits the DUT sends come back in-band (ATA
  DTMF mode "in audio") and are detected here, or as RFC 4733 events.
* **hang-up**: a BYE makes the ATA apply its profile's disconnect signal (CPC, polarity, a tone).
  Tone-only and silence disconnects are made here instead: the tone (or nothing) is sent over RTP with
  the call left up until the DUT hangs up or ``tolerances.disconnect_budget_s`` passes. After a BYE the
  DUT's hook state is no longer visible: scenarios check gatewayd's own outputs for when it noticed.

``ata.model: direct-sip`` drops the ATA: the user agent calls ``ata.address`` straight, e.g. a
gatewayd SIP trunk (tests/integration/test_hil_lab_sip.py runs the lab code that way in CI).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from drivers.emulators.line_audio import RING_CADENCES
from drivers.line import (
    Answered,
    CallFailed,
    DigitReceived,
    LineEvent,
    LineStatus,
    RemoteHangup,
    Ringing,
)
from drivers.sip.config import SipTrunkConfig
from hil.backends.common import FarEndPort, HeardAudio, scaled
from hil.backends.lab_dut import LabDut
from hil.rig import Rig
from hil.simulator import (
    CallerId,
    CidFaults,
    CidMode,
    Disconnect,
    LineConfig,
    Recording,
    SimCall,
    SimEvent,
)
from media.dtmf import dtmf_tone
from media.frame import FRAME_SAMPLES, SAMPLE_RATE, Samples
from media.progress import ToneKind, render_tone
from media.tones import tone as steady_tone
from media.wav import write_wav

log = logging.getLogger(__name__)

__all__ = ["LabSimulator", "NotOnThisRig", "capabilities_of"]

_TONE_NAMES = {"busy": ToneKind.BUSY, "reorder": ToneKind.CONGESTION, "congestion": ToneKind.CONGESTION,
               "dial": ToneKind.DIAL, "dial-tone": ToneKind.DIAL, "ringback": ToneKind.RINGBACK, "sit": ToneKind.SIT}
_DISCONNECT_TONES = {Disconnect.BUSY: "busy", Disconnect.REORDER: "reorder", Disconnect.DIAL_TONE: "dial"}
_CID_CAPS = {CidMode.BELL202_MDMF: ("cid-fsk",), CidMode.BELL202_SDMF: ("cid-fsk",),
             CidMode.ETSI_FSK_BEFORE_RING: ("cid-fsk", "cid-before-ring"),
             CidMode.ETSI_DTMF: ("cid-dtmf", "cid-before-ring"), CidMode.NONE: ()}
_NO_FAULTS = CidFaults()
_SAME_PRESS_S = 0.3  # an RFC 4733 event and the in-band tone of the same key press are this close


class NotOnThisRig(Exception):
    """The rig, as set up now, cannot do what a scenario asked (the message says what would)."""


def capabilities_of(rig: Rig) -> frozenset[str]:
    """What the lab backend can do on ``rig`` (names of :attr:`hil.simulator.LineSimulator.capabilities`)."""
    caps = {"ring", "disconnect-tones", "inband-dtmf", "offnominal-dtmf"}
    if not rig.ata.analog:
        caps.add("sip")
        return frozenset(caps)
    prof = rig.ata.profile
    caps.update(_CID_CAPS[prof.cid])
    if prof.disconnect is Disconnect.CPC:
        caps.add("disconnect-cpc")
    elif prof.disconnect is Disconnect.POLARITY:
        caps.add("disconnect-polarity")
    # A TLE-A in the rig would add "cid-faults" and "ring-cadence" once the backend rings through it;
    # it does not yet (hil/backends/tle_a.py: its command parameters must come from the manual first).
    return frozenset(caps)


def _local_address_towards(host: str) -> str:
    """The local IP the kernel would use to reach ``host`` (no packet is sent)."""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return "127.0.0.1"
    except ValueError:
        pass  # a host name: let the kernel resolve and route it
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, 9))
        return str(s.getsockname()[0])


class LabSimulator:
    """:class:`~hil.simulator.LineSimulator` over an ATA (or straight to a SIP trunk: ``direct-sip``).

    ``results_dir``: every :meth:`record_far_end` is also written there as ``far-end-NNN.wav`` (and kept
    in :attr:`heard`). The SIP stack starts on the first :meth:`ring` (or :meth:`start`); :meth:`close`
    stops it. :meth:`remote_dut` gives the Pi as the scenarios' DUT.
    """

    def __init__(self, rig: Rig, *, results_dir: Path | None = None) -> None:
        self.rig = rig
        self.capabilities: frozenset[str] = capabilities_of(rig)
        self.tolerance_s: float = rig.tolerances.timing_s
        self.results_dir = results_dir
        self._config = self.default_config
        self._cv = threading.Condition()
        self._events: list[SimEvent] = []
        self._t0 = time.monotonic()
        self._line: Any = None
        self._leg: str | None = None
        self._port: FarEndPort | None = None
        self._call: SimCall | None = None
        self._state = "idle"  # idle, ringing, answered, ended
        self._first_ring_at: float | None = None
        self._recordings = 0
        self._guard: threading.Timer | None = None
        self._digits: list[tuple[float, str, str]] = []  # (t, digit, "oob"/"inband") from the DUT
        self.heard = HeardAudio()
        self.path = rig.dut.path

    @property
    def default_config(self) -> LineConfig:
        """The line the rig gives as set up now (the active ATA profile): the base a scenario's own
        LineConfig fields go on top of."""
        rig = self.rig
        prof = rig.ata.profile
        return LineConfig(country=rig.country, cid=prof.cid if rig.ata.analog else CidMode.NONE,
                          ring_cadence=prof.ring_cadence,
                          disconnect=prof.disconnect if rig.ata.analog else Disconnect.BYE, cpc_ms=prof.cpc_ms,
                          tone_after_disconnect=prof.tone_after_disconnect)

    def remote_dut(self, settings: Any = None) -> LabDut:
        """The Pi as the DUT (:class:`~hil.backends.lab_dut.LabDut`). ``settings`` (a scenario's
        ``hil.dut.DutSettings``) must match what the rig file says the Pi's line is configured with."""
        dut = self.rig.dut
        if settings is not None:
            wrong = [f"{name} {getattr(settings, name)} (the Pi has {getattr(dut, name)})"
                     for name in ("rings_before_answer", "silence_hangup_s", "max_call_s", "cid_after_ring")
                     if hasattr(settings, name) and getattr(settings, name) != getattr(dut, name)]
            if wrong:
                raise NotOnThisRig("the scenario needs the DUT's line with " + ", ".join(wrong))
        return LabDut(dut)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._line is not None:
            return
        from drivers.sip.line import SipLine  # pjsua2 only when the rig is used

        line = SipLine(self._trunk_config())
        line.start(self._on_line_event)
        self._line = line
        if self.rig.ata.registrar:
            deadline = time.monotonic() + 15.0
            while not line.registered and time.monotonic() < deadline:
                time.sleep(0.05)
            if not line.registered:
                self.close()
                raise NotOnThisRig(f"the controller did not register at {self.rig.ata.registrar} as "
                                   f"{self.rig.ata.account!r} within 15 s")

    @property
    def registered(self) -> bool:
        """The controller's account is registered (always False without ``ata.registrar``)."""
        return self._line is not None and bool(self._line.registered)

    def close(self) -> None:
        self._cancel_guard()
        line, self._line = self._line, None
        if line is not None:
            line.stop()

    def __enter__(self) -> LabSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _trunk_config(self) -> SipTrunkConfig:
        ata, ctl = self.rig.ata, self.rig.controller
        if ata.registrar:
            from drivers.sip.message import uri_host_port

            towards = uri_host_port(ata.registrar)[0]
            with contextlib.suppress(OSError):
                towards = str(socket.getaddrinfo(towards, None, socket.AF_INET)[0][4][0])
            bind = ctl.bind_address or _local_address_towards(str(towards))
            return SipTrunkConfig(name="hil-lab", bind_address=bind, port=ctl.sip_port, transports=(ata.transport,),
                                  registrar=ata.registrar, username=ata.account, password=ata.password,
                                  codecs=(ata.codec,), rtp_port=ctl.rtp_port, rtp_port_range=ctl.rtp_port_range,
                                  rtp_timeout_s=0.0, local_user=ctl.caller_user, user_agent="gatewayd-hil")
        bind = ctl.bind_address or _local_address_towards(ata.address)
        return SipTrunkConfig(name="hil-lab", bind_address=bind, port=ctl.sip_port, transports=(ata.transport,),
                              allowed_peers=(ata.address,), codecs=(ata.codec,), rtp_port=ctl.rtp_port,
                              rtp_port_range=ctl.rtp_port_range, rtp_timeout_s=0.0, local_user=ctl.caller_user,
                              user_agent="gatewayd-hil")

    # ------------------------------------------------------------------ events from the SIP line
    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _note(self, kind: str, detail: str = "", t: float | None = None) -> None:
        with self._cv:
            self._events.append(SimEvent(self._now() if t is None else t, kind, detail))
            self._cv.notify_all()

    def _on_line_event(self, ev: LineEvent) -> None:
        if isinstance(ev, LineStatus):
            log.info("controller SIP line %s: %s", ev.state, ev.detail)
            return
        if ev.leg_id != self._leg:
            return
        call = self._call
        now = self._now()
        if isinstance(ev, Ringing):
            if self._first_ring_at is None:
                self._first_ring_at = now
            self._note("ring", "180 from the ATA (first ring)")
        elif isinstance(ev, Answered):
            with self._cv:
                self._state = "answered"
                if call is not None:
                    call.answered_at = now
                    call.rings = self._estimated_rings(now)
            self._note("off-hook")
            self._note("answered")
        elif isinstance(ev, RemoteHangup | CallFailed):
            answered = self._state == "answered"
            with self._cv:
                self._state = "ended"
                if call is not None:
                    call.ended_at = now
                    if not answered:
                        call.rings = self._estimated_rings(now)
                        call.extra["sip_code"] = getattr(ev, "sip_code", 0)
                        call.extra["reason"] = getattr(ev, "reason", "")
            self._cancel_guard()
            if answered:
                self._note("on-hook", f"the ATA hung up ({getattr(ev, 'reason', '')})")
            else:
                self._note("not-answered", f"{getattr(ev, 'sip_code', 0)} {getattr(ev, 'reason', '')}".strip())
        elif isinstance(ev, DigitReceived):
            log.debug("digit %s from the far end (%s)", ev.digit, ev.source)
            self._digit(ev.digit, now, "oob")

    def _on_inband_digit(self, digit: str, leg_s: float) -> None:
        log.debug("digit %s from the far end (in-band, %.2f s into the call)", digit, leg_s)
        call = self._call
        at = (call.answered_at or 0.0) + leg_s if call is not None else self._now()
        self._digit(digit, at, "inband")

    def _digit(self, digit: str, at: float, source: str) -> None:
        """One key press the DUT sent. A far end that sends a key both as RFC 4733 and in the audio
        (some ATAs do) is heard once: the same digit from the other source within the window is dropped."""
        with self._cv:
            for t, d, src in self._digits[-4:]:
                if d == digit and src != source and abs(t - at) <= _SAME_PRESS_S:
                    return
            self._digits.append((at, digit, source))
        self._note("dtmf-from-dut", digit, at)

    def _period(self) -> float:
        cad = self._config.ring_cadence or RING_CADENCES.get(self._config.country, (1.0, 4.0))
        return float(sum(cad))

    def _estimated_rings(self, now: float) -> int:
        """Rings so far, from the first 180 and the cadence; the later rings are added to the events
        (detail "estimated") so that counting ``ring`` events gives the same number."""
        first = self._first_ring_at
        if first is None:
            return 0
        period = self._period()
        rings = int((now - first) // period) + 1
        with self._cv:
            have = sum(1 for e in self._events if e.kind == "ring")
        for k in range(have, rings):
            self._note("ring", "estimated from the cadence", first + k * period)
        return rings

    # ------------------------------------------------------------------ LineSimulator: provisioning
    def configure(self, config: LineConfig) -> None:
        """Check that the rig as set up now gives the line ``config`` asks for; remember it for tones.

        The ATA is not re-provisioned from here: a mismatch raises :class:`NotOnThisRig` naming the rig
        profile that would match (set the ATA to it and change ``ata.active_profile``)."""
        rig = self.rig
        prof = rig.ata.profile
        country = rig.country
        problems: list[str] = []
        if rig.ata.analog:
            if config.cid is not prof.cid:
                problems.append(f"caller ID {config.cid.value} (the ATA sends {prof.cid.value})")
            if config.disconnect in (Disconnect.CPC, Disconnect.POLARITY) and config.disconnect is not prof.disconnect:
                problems.append(f"disconnect {config.disconnect.value} (the ATA does {prof.disconnect.value})")
            if config.ring_cadence is not None and config.ring_cadence != prof.ring_cadence:
                problems.append(f"ring cadence {config.ring_cadence}")
            if config.country != country:
                problems.append(f"country {config.country} (the ATA's tones are {country})")
        elif config.disconnect in (Disconnect.CPC, Disconnect.POLARITY):
            problems.append(f"disconnect {config.disconnect.value} (no analog line: direct-sip)")
        if problems:
            fits = [p.name for p in rig.ata.profiles
                    if p.cid is config.cid and (p.country or rig.tones.country) == config.country
                    and (config.disconnect not in (Disconnect.CPC, Disconnect.POLARITY)
                         or p.disconnect is config.disconnect)]
            hint = (f"; set the ATA to profile {' or '.join(map(repr, fits))} and ata.active_profile to it"
                    if fits else "; no profile in the rig file gives it")
            raise NotOnThisRig(f"rig {rig.name!r}, ATA profile {prof.name!r} cannot give " + ", ".join(problems) + hint)
        self._config = config

    # ------------------------------------------------------------------ LineSimulator: inbound call
    def ring(self, caller_id: CallerId | None = None, *, max_rings: int = 10,
             cid_faults: CidFaults = _NO_FAULTS) -> SimCall:
        if cid_faults != _NO_FAULTS:
            raise NotOnThisRig("caller-ID faults need a Teltone TLE-A, and the lab backend does not ring "
                               "through one yet (hil/backends/tle_a.py)")
        if caller_id is not None and caller_id.number_absent == "O":
            raise NotOnThisRig("'out of area' caller ID cannot be asked of an ATA over SIP")
        with self._cv:
            if self._state in ("ringing", "answered"):
                raise RuntimeError("a call is already up: hang_up(), abandon() or reset() first")
        self.start()
        assert self._line is not None
        from_, headers = self._from(caller_id)
        leg = uuid.uuid4().hex
        port = FarEndPort(self._on_inband_digit)
        call = SimCall(caller_id=caller_id)
        call.extra["rings_estimated"] = True
        if caller_id is not None and caller_id.when is not None:
            call.extra["when_not_sent"] = True  # the ATA's clock sets the date/time field
        timeout = min(max_rings * self._period() + 2.0, self.rig.ata.answer_timeout_s)
        with self._cv:
            self._leg, self._port, self._call = leg, port, call
            self._state = "ringing"
            self._first_ring_at = None
        self._note("dial", self.rig.ata.target_uri())
        self._line.dial(leg, self.rig.ata.target_uri(), from_, headers, port, timeout)
        return call

    def _from(self, caller_id: CallerId | None) -> tuple[str, dict[str, str]]:
        cfg = self._line.config if self._line is not None else None
        host = cfg.account_domain if cfg is not None and cfg.registration else (
            f"{cfg.bind_address}:{self._line.local_port(cfg.transports[0])}" if cfg is not None else "invalid")
        if caller_id is None or (caller_id.number is None and caller_id.number_absent is None):
            return f"<sip:{self.rig.controller.caller_user}@{host}>", {}
        if caller_id.number_absent == "P":
            return '"Anonymous" <sip:anonymous@anonymous.invalid>', {"Privacy": "id"}
        user = caller_id.number or self.rig.controller.caller_user
        name = "" if caller_id.name_absent or not caller_id.name else caller_id.name.replace('"', "'")
        display = f'"{name}" ' if name else ""
        return f"{display}<sip:{user}@{host}>", {}

    def wait_answered(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._state == "ringing":
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
            return self._state == "answered"

    @property
    def off_hook(self) -> bool:
        return self._state == "answered"

    def events(self) -> Iterator[SimEvent]:
        with self._cv:
            snapshot = sorted(self._events, key=lambda e: e.t)
        return iter(snapshot)

    def wait_on_hook(self, timeout: float) -> bool:
        """Block until the call is over (the DUT hung up, or any end); True if it is."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._state in ("ringing", "answered"):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    # ------------------------------------------------------------------ LineSimulator: far-end media
    def _live_port(self) -> FarEndPort:
        if self._state != "answered" or self._port is None:
            raise RuntimeError("no answered call: ring() and wait_answered() first")
        return self._port

    def _gone(self) -> bool:
        return self._state != "answered"

    def play(self, audio: Samples, *, level_dbm0: float | None = None, wait: bool = True) -> None:
        port = self._live_port()
        x = scaled(audio, level_dbm0)
        port.set_loop(None)
        port.enqueue(x)
        if wait:
            port.wait_drained(self._gone, timeout=len(x) / SAMPLE_RATE * 2 + 10)

    def send_dtmf(self, digits: str, *, on_ms: int = 80, off_ms: int = 80, level_dbm0: float = -10.0,
                  twist_db: float = 0.0, freq_offset_pct: float = 0.0, inband: bool = True) -> None:
        port = self._live_port()
        if not inband:
            assert self._line is not None and self._leg is not None
            if not self._line.send_digits(self._leg, digits, tone_ms=on_ms, gap_ms=off_ms):
                raise NotOnThisRig("the far end did not offer RFC 4733 (telephone-event) on this call")
            port.wait_sent(len(digits) * (on_ms + off_ms) * SAMPLE_RATE // 1000 + FRAME_SAMPLES * 5, self._gone,
                           timeout=len(digits) * (on_ms + off_ms) / 1000 * 2 + 5)
            return
        off = freq_offset_pct / 100.0
        gap = np.zeros(off_ms * SAMPLE_RATE // 1000, dtype=np.int16)
        parts: list[Samples] = []
        for d in digits:
            parts.append(dtmf_tone(d, on_ms * SAMPLE_RATE // 1000, level_dbm0, twist_db, off, off))
            parts.append(gap)
        self.play(np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16))

    def _tone(self, name: str, seconds: float) -> Samples:
        key = name.strip().lower()
        n = int(seconds * SAMPLE_RATE)
        if key in _TONE_NAMES:
            return render_tone(self._config.country, _TONE_NAMES[key], seconds)
        if key == "cng":  # fax calling tone: 1100 Hz, 0.5 s on, 3 s off
            period = np.concatenate([steady_tone([1100.0], -13.0, SAMPLE_RATE // 2),
                                     np.zeros(3 * SAMPLE_RATE, dtype=np.int16)])
            return np.resize(period, n).astype(np.int16)
        if key in ("ced", "answer"):
            return steady_tone([2100.0], -13.0, n)
        try:
            hz = float(key.removesuffix("hz"))
        except ValueError:
            raise ValueError(f"unknown tone {name!r}: use busy, reorder, dial, ringback, sit, cng, ced or a "
                             "frequency in Hz") from None
        return steady_tone([hz], -13.0, n)

    def send_tone(self, tone: str, seconds: float) -> None:
        self.play(self._tone(tone, seconds))

    @contextlib.contextmanager
    def record_far_end(self) -> Iterator[Recording]:
        port = self._live_port()
        rec = Recording(started_at=self._now())
        chunks = port.add_recorder()
        try:
            yield rec
        finally:
            port.remove_recorder(chunks)
            rec.samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
            self._recordings += 1
            self.heard.clips.append(rec.samples)
            if self.results_dir is not None:
                self.results_dir.mkdir(parents=True, exist_ok=True)
                path = self.results_dir / f"far-end-{self._recordings:03d}.wav"
                write_wav(path, rec.samples)
                log.info("far-end recording: %s (%.2f s)", path, len(rec.samples) / SAMPLE_RATE)

    # ------------------------------------------------------------------ LineSimulator: teardown
    def hang_up(self, *, how: Disconnect | None = None) -> None:
        """End the answered call the way ``how`` says (None: as configured). A BYE makes the ATA apply
        its profile's signal.

        CPC and polarity come from the ATA, so they need the matching profile. Tone-only and silence
        disconnects are sent over RTP; this returns at once and the call stays up until the DUT hangs up
        or ``tolerances.disconnect_budget_s`` passes (then BYE); :meth:`wait_on_hook` waits for it."""
        if self._state == "ringing":
            self.abandon()
            return
        if self._state != "answered":
            return
        prof = self.rig.ata.profile
        analog = self.rig.ata.analog
        how = how if how is not None else self._config.disconnect
        if how is Disconnect.BYE or (analog and how is prof.disconnect):
            self._bye(f"hang-up ({how.value})")
            return
        if how in (Disconnect.CPC, Disconnect.POLARITY):
            raise NotOnThisRig(f"{how.value} disconnect needs an ATA profile with disconnect: {how.value} "
                               f"(active: {prof.name!r}, {prof.disconnect.value})")
        port = self._live_port()
        budget = self.rig.tolerances.disconnect_budget_s
        if how is Disconnect.SILENCE:
            port.set_loop(None)
        else:
            name = _DISCONNECT_TONES[how]
            period = 10.0 if name == "dial" else 12.0  # whole cadence cycles for every plan
            port.set_loop(self._tone(name, period))
        self._note("far-end-hangup", how.value)
        self._cancel_guard()
        guard = threading.Timer(budget, self._bye, args=(f"{how.value} budget of {budget:g} s over",))
        guard.daemon = True
        self._guard = guard
        guard.start()

    def _cancel_guard(self) -> None:
        guard, self._guard = self._guard, None
        if guard is not None:
            guard.cancel()

    def _bye(self, why: str) -> None:
        line, leg = self._line, self._leg
        if line is None or leg is None or self._state != "answered":
            return
        self._note("far-end-hangup", why)
        with self._cv:
            self._state = "ended"
            if self._call is not None:
                self._call.ended_at = self._now()
        line.hangup(leg)

    def abandon(self) -> None:
        """The caller gives up while the DUT's line is still ringing (CANCEL)."""
        if self._state != "ringing":
            if self._state == "answered":
                raise RuntimeError("abandon() is for a ringing call; the DUT already answered")
            return
        assert self._line is not None and self._leg is not None
        self._note("abandoned")
        with self._cv:
            self._state = "ended"
            if self._call is not None:
                now = self._now()
                self._call.ended_at = now
                self._call.rings = self._estimated_rings(now)
        self._line.hangup(self._leg)

    def reset(self) -> None:
        if self._state == "ringing":
            self.abandon()
        elif self._state == "answered":
            self._bye("reset")
        self._cancel_guard()
        if self._line is not None:  # let the BYE/CANCEL go out and the leg wind down
            deadline = time.monotonic() + 3.0
            while self._line.active_legs and time.monotonic() < deadline:
                time.sleep(0.02)
        self.heard.clips.clear()
        with self._cv:
            self._events.clear()
            self._digits.clear()
            self._t0 = time.monotonic()
            self._leg = None
            self._port = None
            self._call = None
            self._state = "idle"
            self._first_ring_at = None
