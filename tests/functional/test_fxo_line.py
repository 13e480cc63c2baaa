"""Whole FXO line (path B) against the emulated board: real pty, real PortAudio/ALSA, real time.

The emulator feeds the ALSA capture FIFO at 8000 samples/s on absolute deadlines, so these tests run
in real time; every wait has a generous timeout and every assertion is on exact outcomes (events,
their order, sample positions with a stated tolerance for buffering delay).
"""

from __future__ import annotations

import dataclasses
import datetime
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import signal

from drivers.emulators.fxo import BoardQuirks, CallerId, FskCallerId, FxoEmulator
from drivers.fxo.config import CidTiming, FxoConfig
from drivers.fxo.line import FxoLine
from drivers.line import (
    CallerIdReceived,
    CallFailed,
    IncomingCall,
    LineError,
    LineEvent,
    LineStatus,
    RemoteHangup,
    SilencePort,
)
from media.frame import Samples

pytestmark = pytest.mark.slow

FAST_RING = (0.5, 1.5)  # short cadence (the gap still exceeds ring_group_gap_ms): these tests are about the line


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[float, LineEvent]] = []
        self.cond = threading.Condition()

    def __call__(self, e: LineEvent) -> None:
        with self.cond:
            self.items.append((time.monotonic(), e))
            self.cond.notify_all()

    def wait(self, pred: Callable[[LineEvent], bool], timeout: float = 15.0) -> LineEvent:
        with self.cond:
            found: list[LineEvent] = []

            def check() -> bool:
                found[:] = [e for _, e in self.items if pred(e)]
                return bool(found)
            assert self.cond.wait_for(check, timeout), f"timed out; events: {self.of(LineEvent)}"
            return found[0]

    def of(self, kind: type) -> list[Any]:
        with self.cond:
            return [e for _, e in self.items if isinstance(e, kind)]


class Rig:
    def __init__(self, tmp: Path, emu_kwargs: dict[str, Any], cfg: dict[str, Any]) -> None:
        self.emu = FxoEmulator(tmp, **emu_kwargs).start()
        self.events = Events()
        base = dict(device=str(self.emu.serial_path), audio_device="fxo", cid=CidTiming.NONE, rings_to_answer=2,
                    abandon_s=3.0, reopen_backoff_s=(0.1, 0.4), playout_prefill_frames=5,
                    audio_rate=self.emu.rate)
        base.update(cfg)
        self.cfg = FxoConfig(**base)
        self.line = FxoLine(self.cfg)
        self._env = self.emu.alsa.activated()

    def __enter__(self) -> Rig:
        self._env.__enter__()
        self.line.start(self.events)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.line.stop()
        finally:
            self._env.__exit__(None, None, None)
            self.emu.stop()

    def answered_call(self, port: SilencePort, rings: int = 5) -> IncomingCall:
        self.emu.ring(rings=rings, cadence=FAST_RING)
        call = self.events.wait(lambda e: isinstance(e, IncomingCall))
        assert isinstance(call, IncomingCall)
        self.line.answer(call.leg_id, port)
        assert self.emu.wait_off_hook(10)
        return call


@pytest.fixture
def rig_factory(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(emu: dict[str, Any] | None = None, **cfg: Any) -> Rig:
        r = Rig(tmp_path / f"rig{len(rigs)}", emu or {}, cfg)
        rigs.append(r)
        return r.__enter__()
    yield make
    for r in rigs:
        r.__exit__(None, None, None)


def voice_like(seconds: float, seed: int, level: float = 3000.0) -> Samples:
    """Band-limited (300–3400 Hz) noise: correlates sharply, survives µ-law."""
    rng = np.random.default_rng(seed)
    sos = signal.butter(6, [300, 3400], btype="bandpass", fs=8000, output="sos")
    x = signal.sosfilt(sos, rng.standard_normal(round(seconds * 8000)))
    return np.clip(np.rint(x / np.std(x) * level), -32768, 32767).astype(np.int16)


def locate(haystack: Samples, needle: Samples) -> tuple[int, float]:
    """Lag of ``needle`` in ``haystack`` and the normalised correlation there."""
    h = haystack.astype(np.float64)
    n = needle.astype(np.float64)
    c = signal.correlate(h, n, mode="valid", method="fft")
    lag = int(np.argmax(c))
    seg = h[lag:lag + len(n)]
    return lag, float(np.dot(seg, n) / (np.linalg.norm(seg) * np.linalg.norm(n)))


def received(port: SilencePort) -> Samples:
    assert [f.pts for f in port.received] == [160 * i for i in range(len(port.received))]  # pts run on
    return np.concatenate([f.samples for f in port.received])


# ------------------------------------------------------------------ the whole call
def test_call_audio_both_ways_then_cpc_hangup(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory(cpc_min_ms=600)
    port = SilencePort()
    prompt = voice_like(1.0, seed=1)
    port.queue_tx(prompt)
    call = r.answered_call(port)
    assert call.remote == str(r.emu.serial_path) and call.caller == ""
    assert call.headers == {"X-Ring-Cadence": "500"}
    caller = voice_like(1.5, seed=2)
    h = r.emu.play(caller)
    assert h.done.wait(10)
    assert r.emu.wait_line_time(h.ended_at + 2400, 10)  # let 300 ms more pass through the buffers
    t_disc = r.emu.hang_up("cpc")
    hup = r.events.wait(lambda e: isinstance(e, RemoteHangup))
    assert r.emu.wait_on_hook(10)
    log = r.emu.calls[-1]

    # the caller's audio arrived intact, at a pts matching the line time (buffering: < 100 ms)
    rx = received(port)
    lag, corr = locate(rx, caller)
    assert corr > 0.99, corr
    expected = h.started_at - log.off_hook_at  # pts 0 is (within a frame) the moment the board went off-hook
    assert abs(lag - expected) <= 800, (lag, expected)
    # the prompt went out intact, within 250 ms of going off-hook
    tx = r.emu.record_far_end()
    lag_tx, corr_tx = locate(tx, prompt)
    assert corr_tx > 0.999, corr_tx
    assert lag_tx <= 2000, lag_tx
    # CPC: reported once the loop was open for cpc_min_ms, on-hook right after
    assert hup == RemoteHangup("fxo", call.leg_id, reason="cpc", tail_start_pts=hup.tail_start_pts)
    assert hup.tail_start_pts is not None
    assert abs(hup.tail_start_pts - (t_disc - log.off_hook_at)) <= 800
    assert log.on_hook_at is not None
    assert 600 * 8 <= log.on_hook_at - t_disc <= 1200 * 8, log.on_hook_at - t_disc  # never before cpc_min_ms
    assert r.line.stats()["capture_overflows"] == 0
    assert r.emu.stats.capture_overflows == 0
    assert len(r.events.of(RemoteHangup)) == 1


def test_rig_is_bit_exact_without_line_impairments(rig_factory: Callable[..., Rig]) -> None:
    """No µ-law, no noise: the driver gets exactly the samples the emulator wrote, and vice versa."""
    r = rig_factory(emu=dict(ulaw=False, noise_dbm0=None))
    port = SilencePort()
    prompt = voice_like(0.5, seed=3)
    port.queue_tx(prompt)
    r.answered_call(port)
    caller = voice_like(0.5, seed=4)
    h = r.emu.play(caller)
    assert h.done.wait(10)
    assert r.emu.wait_line_time(h.ended_at + 2400, 10)
    r.line.hangup(r.events.of(IncomingCall)[0].leg_id)
    assert r.emu.wait_on_hook(10)
    rx = received(port)
    lag, _ = locate(rx, caller)
    assert np.array_equal(rx[lag:lag + len(caller)], caller)
    tx = r.emu.record_far_end()
    lag, _ = locate(tx, prompt)
    assert np.array_equal(tx[lag:lag + len(prompt)], prompt)
    assert r.events.of(RemoteHangup) == []  # we hung up: no remote hang-up


def test_card_at_48k_is_resampled_both_ways(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory(emu=dict(rate=48000))
    assert r.cfg.audio_rate == 48000
    port = SilencePort()
    prompt = voice_like(1.0, seed=5)
    port.queue_tx(prompt)
    r.answered_call(port)
    caller = voice_like(1.0, seed=6)
    h = r.emu.play(caller)
    assert h.done.wait(10)
    assert r.emu.wait_line_time(h.ended_at + 2400, 10)
    r.emu.hang_up("cpc")
    r.events.wait(lambda e: isinstance(e, RemoteHangup))
    _, corr = locate(received(port), caller)
    assert corr > 0.99, corr  # two anti-alias filters and µ-law in the way
    _, corr_tx = locate(r.emu.record_far_end(), prompt)
    assert corr_tx > 0.99, corr_tx
    assert r.emu.stats.capture_samples_written % 960 == 0


def test_polarity_reversal_hangs_up(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory(hangup_on_polarity=True, polarity_guard_ms=600)
    port = SilencePort()
    call = r.answered_call(port)
    assert r.emu.wait_line_time(r.emu.calls[-1].off_hook_at + 8000, 10)
    t_disc = r.emu.hang_up("polarity")
    hup = r.events.wait(lambda e: isinstance(e, RemoteHangup))
    assert r.emu.wait_on_hook(10)
    assert hup.reason == "polarity" and hup.leg_id == call.leg_id
    log = r.emu.calls[-1]
    assert log.on_hook_at is not None and log.on_hook_at - t_disc <= 500 * 8  # promptly
    assert hup.tail_start_pts is not None and abs(hup.tail_start_pts - (t_disc - log.off_hook_at)) <= 800


def test_short_loop_glitch_is_not_a_hangup_and_local_hangup_is_quiet(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory(cpc_min_ms=600)
    port = SilencePort()
    call = r.answered_call(port)
    assert r.emu.wait_event("LOOP 1", 5)
    r.emu.loop_glitch(250)
    assert r.emu.wait_line_time(r.emu.line_time + 8000, 10)
    assert r.emu.off_hook and r.events.of(RemoteHangup) == []
    assert r.line.stats()["cpc_glitches"] == 1
    r.line.hangup(call.leg_id)
    assert r.emu.wait_on_hook(10)
    assert r.events.of(RemoteHangup) == []


def test_silence_timeout_cuts_at_the_start_of_silence(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory(silence_timeout_s=1.0)
    port = SilencePort()
    r.answered_call(port)
    h = r.emu.play(voice_like(0.6, seed=7))
    hup = r.events.wait(lambda e: isinstance(e, RemoteHangup))
    assert hup.reason == "silence"
    # silence began when the caller stopped talking (pts of the end of the clip ± buffering)
    assert h.ended_at is not None and h.started_at is not None
    start = h.ended_at - r.emu.calls[-1].off_hook_at
    assert hup.tail_start_pts is not None and abs(hup.tail_start_pts - start) <= 800


def test_max_call_length(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory(max_call_s=1.5, silence_timeout_s=0)
    port = SilencePort()
    r.answered_call(port)
    hup = r.events.wait(lambda e: isinstance(e, RemoteHangup))
    assert hup.reason == "max-duration" and hup.tail_start_pts is None
    assert r.emu.wait_on_hook(10)
    log = r.emu.calls[-1]
    assert log.on_hook_at is not None
    assert 1.5 * 8000 <= log.on_hook_at - log.off_hook_at <= 2.0 * 8000


# ------------------------------------------------------------------ disconnect tones (media.progress)
@pytest.mark.parametrize(("country", "how", "reason"), [
    ("us", "busy", "busy-tone"), ("us", "reorder", "reorder-tone"), ("us", "dial", "dial-tone"),
    ("uk", "busy", "busy-tone"),
])
def test_disconnect_tone_ends_the_call_and_marks_where_to_cut(rig_factory: Callable[..., Rig], country: str,
                                                              how: str, reason: str) -> None:
    r = rig_factory(emu=dict(country=country), country=country, silence_timeout_s=0)
    port = SilencePort()
    call = r.answered_call(port)
    caller = voice_like(1.0, seed=9)
    h = r.emu.play(caller)
    assert h.done.wait(10)
    t_tone = r.emu.hang_up(how)  # the exchange's tone follows the caller's last word
    hup = r.events.wait(lambda e: isinstance(e, RemoteHangup), timeout=20)
    assert r.emu.wait_on_hook(10)
    assert (hup.leg_id, hup.reason) == (call.leg_id, reason)
    off = r.emu.calls[-1].off_hook_at
    assert hup.tail_start_pts is not None and abs(hup.tail_start_pts - (t_tone - off)) <= 400  # within 50 ms
    rx = received(port)
    # cut there, the recording keeps all of the caller and none of the tone
    lag, corr = locate(rx[:hup.tail_start_pts], caller)
    assert corr > 0.99 and lag + len(caller) <= hup.tail_start_pts + 80
    tail = rx[hup.tail_start_pts + 160:]
    assert np.sqrt(np.mean(tail.astype(float) ** 2)) > 300  # the tone (at least -24 dBm0) is in the tail


def test_inband_dtmf_reaches_the_daemons_detector(rig_factory: Callable[..., Rig]) -> None:
    """The driver leaves DTMF to the media pipeline: what it delivers must be detectable, at the right pts."""
    from media.dtmf import DtmfDetector

    r = rig_factory()
    port = SilencePort()
    r.answered_call(port)
    h = r.emu.send_dtmf("159*#0D", on_ms=60, off_ms=60, level_dbm0=-20.0, twist_db=-4.0, freq_offset_pct=1.0)
    assert h.done.wait(10)
    assert r.emu.wait_line_time(h.ended_at + 2400, 10)
    det = DtmfDetector()
    events = [e for f in port.received for e in det.process(f)]
    assert "".join(e.digit for e in events) == "159*#0D"
    first = h.started_at - r.emu.calls[-1].off_hook_at
    assert abs(events[0].start - first) <= 400
    assert all(abs(e.duration - 480) <= 80 for e in events)


# ------------------------------------------------------------------ caller ID (media.callerid)
def test_caller_id_between_rings_is_decoded_before_the_offer(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory(cid=CidTiming.AFTER_RING, rings_to_answer=2, abandon_s=8.0)
    when = datetime.datetime(2026, 1, 2, 15, 4)
    r.emu.ring(CallerId(number="5551234567", name="ALICE SMITH", when=when), rings=4)  # US 2 s on / 4 s off
    call = r.events.wait(lambda e: isinstance(e, IncomingCall))
    assert len(r.emu.event_times("RING 1")) == 1  # offered in the silence after ring 1, number known
    assert (call.caller, call.caller_name, call.headers) == ("5551234567", "ALICE SMITH", {"X-Ring-Cadence": "2000"})
    r.line.answer(call.leg_id, SilencePort())
    assert r.emu.wait_off_hook(15)
    assert len(r.emu.event_times("RING 1")) == 2  # answered on ring 2
    assert r.events.of(CallerIdReceived) == []


@pytest.mark.parametrize(("cid", "renderer", "caller", "extra"), [
    (CallerId(number="5551234", sdmf=True), None, "5551234", None),
    (CallerId(number_absent="P", name_absent="P"), None, "anonymous", None),
    (CallerId(number="5559876", name="BAD SUM"), FskCallerId(bad_checksum=True), "",
     CallerIdReceived("fxo", "", caller="5559876", caller_name="BAD SUM", checksum_ok=False)),
    (CallerId(number="5550001", name="LOW AND OFF"), FskCallerId(level_dbm0=-35, freq_error=0.01, baud_error=-0.01),
     "5550001", None),
])
def test_caller_id_variants(rig_factory: Callable[..., Rig], cid: CallerId, renderer: FskCallerId | None,
                            caller: str, extra: CallerIdReceived | None) -> None:
    r = rig_factory(cid=CidTiming.AFTER_RING)
    r.emu.ring(cid, rings=2, cadence=(0.5, 2.5), renderer=renderer)
    call = r.events.wait(lambda e: isinstance(e, IncomingCall))
    assert call.caller == caller
    assert len(r.emu.event_times("RING 1")) == 1
    if extra is not None:
        got = r.events.wait(lambda e: isinstance(e, CallerIdReceived))
        assert got == dataclasses.replace(extra, leg_id=call.leg_id)
    else:
        assert r.events.of(CallerIdReceived) == []


def test_uk_caller_id_before_the_first_ring(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory(emu=dict(country="uk"), country="uk", cid=CidTiming.BEFORE_RING, cid_standard="v23",
                    rings_to_answer=1)
    r.emu.ring(CallerId(number="02079460000", name="BOB"), rings=3, cid_timing="before-ring", standard="v23")
    call = r.events.wait(lambda e: isinstance(e, IncomingCall))
    assert (call.caller, call.caller_name) == ("02079460000", "BOB")
    assert call.headers == {"X-Ring-Cadence": "400,200,400"}  # the double ring is one ring
    pol = r.emu.event_times("POL -")
    assert pol and pol[0] < r.emu.event_times("RING 1")[0]  # line reversal, DT-AS and FSK came first
    r.line.answer(call.leg_id, SilencePort())
    assert r.emu.wait_off_hook(10)


@pytest.mark.parametrize(("number", "caller"), [("5551230001", "5551230001"), (None, "anonymous")])
def test_dtmf_clip_with_no_alerting_signal_is_heard_on_the_idle_line(rig_factory: Callable[..., Rig],
                                                                     number: str | None, caller: str) -> None:
    from hil.backends.emulator_fxo import dtmf_clip  # A<number>C, or D1C (private)

    r = rig_factory(cid=CidTiming.BEFORE_RING, cid_standard="dtmf", rings_to_answer=1)
    r.emu.ring(CallerId(number=number, number_absent=None if number else "P"), rings=3, cadence=FAST_RING,
               cid_timing="before-ring", reversal=False, dtas=False, renderer=dtmf_clip)
    call = r.events.wait(lambda e: isinstance(e, IncomingCall))
    assert call.caller == caller
    assert r.emu.event_times("POL -") == [] and len(r.emu.event_times("RING 1")) == 1
    r.line.answer(call.leg_id, SilencePort())
    assert r.emu.wait_off_hook(10)


# ------------------------------------------------------------------ ringing
def test_caller_abandons_before_answer(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory(rings_to_answer=4, abandon_s=3.0)
    r.emu.ring(rings=10, cadence=FAST_RING)
    call = r.events.wait(lambda e: isinstance(e, IncomingCall))
    r.line.answer(call.leg_id, SilencePort())
    assert r.emu.wait_line_time(r.emu.event_times("RING 1")[0] + 8000 * 2, 10)
    r.emu.abandon()
    t_abandon = time.monotonic()
    hup = r.events.wait(lambda e: isinstance(e, RemoteHangup))
    assert hup == RemoteHangup("fxo", call.leg_id, reason="abandoned")
    # not before the ring timeout: the last ring ended at most one gap (1.5 s) before abandon()
    assert time.monotonic() - t_abandon >= 1.4
    assert not r.emu.off_hook and r.emu.calls == []


def test_garbage_on_the_serial_port_is_counted_and_the_call_goes_on(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory()
    r.emu.garbage(b"\x00\xff\xfeRING 1 @5*00\r\n")  # binary noise + a bad checksum: one line
    r.emu.garbage(b"hello there\r\n")  # no checksum
    r.emu.garbage(b"Z" * 300 + b"\n")  # over-long
    r.emu.garbage(b"RING 1 @77*7F\r\n")  # wrong checksum must not start a ring
    port = SilencePort()
    call = r.answered_call(port)
    assert r.emu.event_times("RING 1")  # the real rings came after the noise
    assert r.line.stats()["garbage_lines"] == 4
    r.line.hangup(call.leg_id)
    assert r.emu.wait_on_hook(10)
    assert r.events.of(CallFailed) == []


def test_board_refusing_to_go_off_hook_fails_the_call(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory(emu=dict(quirks=BoardQuirks(refuse_hook_off=True)))
    r.emu.ring(rings=4, cadence=FAST_RING)
    call = r.events.wait(lambda e: isinstance(e, IncomingCall))
    r.line.answer(call.leg_id, SilencePort())
    failed = r.events.wait(lambda e: isinstance(e, CallFailed))
    assert failed == CallFailed("fxo", call.leg_id, 503, "hook-refused STATE")
    assert not r.emu.off_hook


def test_board_quirks_loop_before_ack_and_late_ack(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory(emu=dict(quirks=BoardQuirks(loop_before_ack=True, ack_delay_ms=300)))
    port = SilencePort()
    r.answered_call(port)
    assert r.emu.wait_line_time(r.emu.line_time + 2 * 8000, 10)
    assert r.events.of(RemoteHangup) == [] and r.emu.off_hook
    assert len(port.received) > 50  # media flows


# ------------------------------------------------------------------ the device goes away
def test_vanished_board_ends_the_call_and_the_line_recovers(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory()
    port = SilencePort()
    call = r.answered_call(port)
    r.emu.vanish()
    hup = r.events.wait(lambda e: isinstance(e, RemoteHangup))
    assert hup == RemoteHangup("fxo", call.leg_id, reason="device-lost")
    r.events.wait(lambda e: isinstance(e, LineStatus) and e.state == "down")
    r.events.wait(lambda e: isinstance(e, LineStatus) and e.state == "recovering")
    time.sleep(0.5)  # a few failed reopen attempts
    r.emu.reappear()
    ups = lambda e: isinstance(e, LineStatus) and e.state == "up"  # noqa: E731
    r.events.wait(lambda e: ups(e) and len([x for x in r.events.of(LineStatus) if x.state == "up"]) == 2)
    assert r.line.stats()["device_lost"] == 1 and r.line.stats()["reconnects"] == 1
    # and it takes the next call, audio and all
    port2 = SilencePort()
    r.emu.ring(rings=5, cadence=FAST_RING)
    call2 = r.events.wait(lambda e: isinstance(e, IncomingCall) and e.leg_id != call.leg_id)
    r.line.answer(call2.leg_id, port2)
    assert r.emu.wait_off_hook(10)
    caller = voice_like(0.5, seed=8)
    h = r.emu.play(caller)
    assert h.done.wait(10)
    assert r.emu.wait_line_time(h.ended_at + 2400, 10)
    assert locate(received(port2), caller)[1] > 0.99


def test_board_restart_mid_call(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory()
    call = r.answered_call(SilencePort())
    r.emu.reset_board()
    hup = r.events.wait(lambda e: isinstance(e, RemoteHangup))
    assert hup == RemoteHangup("fxo", call.leg_id, reason="device-lost")
    assert r.line.stats()["board_resets"] == 1


def test_hung_board_is_resynced(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory(hook_ack_timeout_s=1.0, handshake_timeout_s=2.0)
    r.emu.quirks = dataclasses.replace(r.emu.quirks, mute=True)
    r.emu.ring(rings=6, cadence=FAST_RING)
    call = r.events.wait(lambda e: isinstance(e, IncomingCall))
    r.line.answer(call.leg_id, SilencePort())
    failed = r.events.wait(lambda e: isinstance(e, CallFailed))
    assert failed == CallFailed("fxo", call.leg_id, 503, "hook-timeout")
    r.events.wait(lambda e: isinstance(e, LineStatus) and e.state == "recovering")
    r.emu.quirks = dataclasses.replace(r.emu.quirks, mute=False)
    r.events.wait(lambda e: isinstance(e, LineStatus) and e.state == "up" and "fw=" in e.detail
                  and len([x for x in r.events.of(LineStatus) if x.state == "up"]) == 2)


def test_hung_board_is_noticed_while_idle(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory(keepalive_s=0.5, hook_ack_timeout_s=1.0, handshake_timeout_s=2.0)
    assert r.emu.wait_event("STATUS", 5, count=2)  # the handshake's, then a keepalive
    r.emu.quirks = dataclasses.replace(r.emu.quirks, mute=True)
    r.events.wait(lambda e: isinstance(e, LineStatus) and e.state == "recovering")
    r.emu.quirks = dataclasses.replace(r.emu.quirks, mute=False)
    r.events.wait(lambda e: isinstance(e, LineStatus) and e.state == "up"
                  and len([x for x in r.events.of(LineStatus) if x.state == "up"]) == 2)
    assert r.line.stats()["reconnects"] == 1


# ------------------------------------------------------------------ start-up errors
def test_start_without_the_board_is_a_clear_error(tmp_path: Path) -> None:
    with FxoEmulator(tmp_path) as emu, emu.alsa.activated():
        line = FxoLine(FxoConfig(device=str(tmp_path / "nope"), audio_device="fxo"))
        with pytest.raises(LineError, match=r"cannot open .*nope"):
            line.start(Events())
        line.stop()  # idempotent, nothing started


def test_start_with_a_missing_sound_card_lists_what_exists(tmp_path: Path) -> None:
    with FxoEmulator(tmp_path) as emu, emu.alsa.activated():
        line = FxoLine(FxoConfig(device=str(emu.serial_path), audio_device="usb-codec"))
        with pytest.raises(LineError, match="no capture audio device 'usb-codec'; PortAudio offers: 'fxo'"):
            line.start(Events())


def test_start_with_an_incompatible_board(tmp_path: Path) -> None:
    with FxoEmulator(tmp_path, quirks=BoardQuirks(protocol="FXO/2")) as emu, emu.alsa.activated():
        line = FxoLine(FxoConfig(device=str(emu.serial_path), audio_device="fxo"))
        with pytest.raises(LineError, match="board speaks FXO/2, this driver FXO/1"):
            line.start(Events())


def test_stalled_sound_card_ends_the_call_and_is_reported(rig_factory: Callable[..., Rig]) -> None:
    r = rig_factory(audio_stall_s=0.5)
    call = r.answered_call(SilencePort())
    r.emu.pause_audio()
    hup = r.events.wait(lambda e: isinstance(e, RemoteHangup))
    assert hup == RemoteHangup("fxo", call.leg_id, reason="device-lost")
    down = r.events.wait(lambda e: isinstance(e, LineStatus) and e.state == "down")
    assert down.detail == "sound card stalled"
    assert r.emu.wait_on_hook(10)  # the control port still works: the line is released
    r.emu.resume_audio()
    r.events.wait(lambda e: isinstance(e, LineStatus) and e.state == "up" and "flowing" in e.detail)
