"""The modem driver's engine against the emulated device on a virtual clock (exact, no threads)."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.emulators.modem import CallerId, line_roundtrip
from drivers.line import (
    CallerIdReceived,
    CallFailed,
    DigitReceived,
    DigitSource,
    IncomingCall,
    LineStatus,
    RemoteHangup,
    Ringing,
    SilencePort,
)
from drivers.modem.config import DEFAULT_HANGUP_EVENTS
from drivers.modem.engine import State
from media.frame import Samples
from tests.modem_bench import Bench, received

EMUS = ["usr5637", "cx93010", "zoom3095", "intel", "v253"]


def caller_audio(n: int, seed: int = 1) -> Samples:
    """Loud noise-like speech stand-in that also hits the codes that need DLE shielding."""
    x = np.random.default_rng(seed).integers(-20000, 20000, n).astype(np.int16)
    x[0] = 15000
    x[5::97] = -28672  # 8-bit unsigned 0x10
    x[7::89] = -7900  # µ-law / A-law codes near 0x10
    return x


def first_loud(x: Samples, start: int = 0) -> int:
    return start + int(np.flatnonzero(np.abs(x[start:].astype(np.int32)) > 1000)[0])


JOHN = CallerId(number="5551234", name="DOE JOHN")


def answered_call(emu: str = "usr5637", cid: CallerId | None = JOHN, **kw: object) -> tuple[Bench, SilencePort]:
    b = Bench(emu, **kw)  # type: ignore[arg-type]
    port = SilencePort()
    b.dev.ring(cid, rings=6)
    b.answer_next_call(port)
    b.run_until(lambda: b.dev.mode == "vrx", 10.0)
    return b, port


def offset_by_marker(b: Bench, port: SilencePort) -> int:
    """pts − line sample for the current +VRX stretch, from a marker played on the line."""
    start_pts = len(port.received) * 160
    marker = caller_audio(800, seed=99)
    line_start = b.dev.play(marker)
    b.run(0.3)
    return first_loud(received(port), start_pts) - line_start


# ------------------------------------------------------------------------------------------ start-up
@pytest.mark.parametrize(("emu", "profile", "codec"), [
    ("usr5637", "usr5637", "ULAW"), ("cx93010", "cx93010", "UNSIGNED PCM"), ("zoom3095", "cx93010", "UNSIGNED PCM"),
    ("intel", "intel", "ALAW"), ("v253", "v253", "G.711U")])
def test_start_identifies_chip_and_reports_up(emu: str, profile: str, codec: str) -> None:
    b = Bench(emu)
    s = b.eng.session
    assert s.profile is not None and s.profile.name == profile
    assert s.codec is not None and s.codec.name == codec
    assert b.events == [LineStatus("line1", "", state="up", detail=f"{profile} {codec}")]
    assert b.dev.fclass == 8 and b.dev.vcid == 1
    assert b.dev.vsd == ((0 if profile == "cx93010" else 128), 70)
    assert b.dev.ste == (7 if profile == "cx93010" else 0)
    assert b.dev.ifc == ((0, 0) if profile == "cx93010" else (2, 2))


def test_forced_profile_from_config() -> None:
    b = Bench("usr5637", profile="v253", codec_preference=("LINEAR16",))
    assert b.eng.session.profile is not None and b.eng.session.profile.name == "v253"
    assert b.dev.vsm is not None and b.dev.vsm.name == "LINEAR" and b.dev.vsm.bits == 16


def test_start_recovers_a_modem_left_streaming_in_voice_receive() -> None:
    b = Bench("usr5637", start=False)
    for cmd in (b"AT+FCLASS=8\r", b"AT+VSM=131,8000\r", b"AT+VLS=1\r", b"AT+VRX\r"):
        b.dev.receive(cmd, b.now)
    b.dev.poll(b.now)
    b.dev.play(caller_audio(80000))
    assert b.dev.mode == "vrx"
    b.eng.start(b.now)
    b.run_until(lambda: b.eng.state is State.READY, 10.0)
    assert b.dev.mode == "command" and not b.dev.off_hook
    assert b.of(LineStatus)[-1].state == "up"


# ------------------------------------------------------------------------------------------ ringing
@pytest.mark.parametrize("emu", EMUS)
def test_us_caller_id_after_first_ring_then_answer_at_ring_two(emu: str) -> None:
    b = Bench(emu)
    port = SilencePort()
    b.dev.ring(CallerId(number="5551234", name="DOE JOHN"), rings=6)
    b.run_until(lambda: bool(b.of(IncomingCall)), 5.0)
    assert b.dev.rings_sent == 1  # offered as soon as caller ID completed, before ring 2
    call = b.of(IncomingCall)[0]
    assert (call.caller, call.caller_name, call.leg_id) == ("5551234", "DOE JOHN", "line1-1")
    assert b.of(CallerIdReceived) == [CallerIdReceived("line1", "line1-1", "5551234", "DOE JOHN")]
    b.eng.answer(call.leg_id, port, b.now)
    b.run_until(lambda: b.dev.off_hook, 5.0)
    assert b.dev.rings_at_off_hook == 2
    assert "AT+VLS=1" in b.dev.commands and b.dev.ata_count == 0
    assert not any(c.upper().startswith("ATA") for c in b.dev.commands)


def test_uk_caller_id_before_first_ring() -> None:
    b = Bench("cx93010", cid_before_ring=True)
    b.dev.ring(CallerId(number="01632960123", name=None), rings=6)
    b.run_until(lambda: bool(b.of(IncomingCall)), 5.0)
    assert b.dev.rings_sent == 0  # completed on its settle time, before any RING
    assert b.of(IncomingCall)[0].caller == "01632960123"
    assert b.of(CallerIdReceived)[0].caller_name == ""
    port = SilencePort()
    b.eng.answer("line1-1", port, b.now)
    b.run_until(lambda: b.dev.off_hook, 5.0)
    assert b.dev.rings_at_off_hook == 2


@pytest.mark.parametrize(("cid", "caller", "absent"), [
    (CallerId(number_absent="P", name_absent="P"), "anonymous", "P"),
    (CallerId(number_absent="O", date=None, time=None), "", "O"),
    (CallerId(number="5550100", garbage=True), "5550100", ""),
])
def test_caller_id_variants(cid: CallerId, caller: str, absent: str) -> None:
    b = Bench("usr5637")
    b.dev.ring(cid, rings=4)
    b.run_until(lambda: bool(b.of(CallerIdReceived)), 5.0)
    got = b.of(CallerIdReceived)[0]
    assert (got.caller, got.number_absent) == (caller, absent)
    assert b.of(IncomingCall)[0].caller == caller


def test_no_caller_id_offers_at_configured_ring() -> None:
    b = Bench("usr5637", offer_after_rings=3)
    b.dev.ring(None, rings=6)
    b.run_until(lambda: bool(b.of(IncomingCall)), 10.0)
    assert b.dev.rings_sent == 3
    assert b.of(IncomingCall)[0].caller == "" and b.of(CallerIdReceived) == []


def test_abandoned_while_ringing() -> None:
    b = Bench("usr5637")
    b.dev.ring(CallerId(number="5551234"), rings=4)
    b.run(4 * 1.2 + 3.5)
    assert [e.count for e in b.of(Ringing)] == [2, 3, 4]
    assert b.of(RemoteHangup) == [RemoteHangup("line1", "line1-1", reason="abandoned")]
    b.eng.answer("line1-1", SilencePort(), b.now)  # too late
    b.step()
    assert b.of(CallFailed) == [CallFailed("line1", "line1-1", 480, "no such call")]
    assert not b.dev.off_hook


def test_rejected_call_rings_out_and_next_call_is_new() -> None:
    b = Bench("usr5637")
    b.dev.ring(CallerId(number="5551234"), rings=3)
    b.run_until(lambda: bool(b.of(IncomingCall)), 5.0)
    b.eng.hangup("line1-1", b.now)
    b.run(3 * 1.2 + 3.5)
    assert b.of(Ringing) == [] and b.of(RemoteHangup) == [] and not b.dev.off_hook
    b.dev.ring(CallerId(number="5550000"), rings=3)
    b.run_until(lambda: len(b.of(IncomingCall)) == 2, 5.0)
    assert b.of(IncomingCall)[1].leg_id == "line1-2" and b.of(IncomingCall)[1].caller == "5550000"


# ------------------------------------------------------------------------------------------ a whole call
@pytest.mark.parametrize("emu", EMUS)
def test_whole_call_audio_prompt_digits_and_cpc(emu: str) -> None:
    b, port = answered_call(emu)
    fmt = b.dev.codec
    assert fmt is not None
    # the caller speaks: samples arrive exactly, after the codec's round trip
    audio = caller_audio(8000)
    line_start = b.dev.play(audio)
    b.run(1.2)
    rx = received(port)
    at = first_loud(rx)
    assert np.array_equal(rx[at:at + len(audio)], line_roundtrip(fmt, audio))
    assert at - line_start == 0  # +VRX began at off-hook: pts and line time coincide
    # a prompt is played; the modem played exactly it
    prompt = caller_audio(4000, seed=5)
    port.queue_tx(prompt)
    b.run_until(lambda: b.dev.vtx_count == 1 and b.dev.mode == "vrx", 10.0)
    tx = b.dev.transmitted()
    assert np.array_equal(tx[:len(prompt)], line_roundtrip(fmt, prompt))
    # the Zoom 3095 leaves +VTX only on DLE DLE DLE ETX, whose first pair is one literal 0x10 sample
    assert len(tx) - len(prompt) == (1 if emu == "zoom3095" else 0)
    assert b.dev.tx_overflow_bytes == 0
    # digits: one per key press, at the pts of the press
    off = offset_by_marker(b, port)
    first = b.dev.send_dtmf("12#")
    b.run(1.0)
    digits = b.of(DigitReceived)
    assert [d.digit for d in digits] == ["1", "2", "#"]
    assert all(d.source is DigitSource.MODEM and d.leg_id == "line1-1" for d in digits)
    assert [d.start_pts for d in digits] == [first + off, first + 1600 + off, first + 3200 + off]
    # the caller hangs up: loop-current drop
    h = b.dev.hang_up("cpc")
    b.run(0.5)
    assert b.of(RemoteHangup) == [RemoteHangup("line1", "line1-1", reason="cpc", tail_start_pts=h + off)]
    assert port.received[-1].end_pts <= h + off
    b.run_until(lambda: b.eng.state is State.READY, 10.0)
    assert not b.dev.off_hook and b.dev.ata_count == 0


def test_transmit_keeps_its_lead_without_underrun_or_overflow() -> None:
    b, port = answered_call("usr5637")
    port.queue_tx(caller_audio(24000, seed=3))
    b.run_until(lambda: b.dev.mode == "vtx" and b.dev.tx_sessions[-1].played, 5.0)
    levels = []
    while b.dev.mode == "vtx" and port.tx_active:
        b.step()
        levels.append(len(b.dev._tx_buf))
    lead_bytes = 300 * 8
    assert max(levels) <= lead_bytes + 160  # never more than the lead (+ the frame being written)
    assert min(levels[:-10]) >= lead_bytes - 160 - 40  # ... and never much less while the prompt lasts
    b.run_until(lambda: b.dev.mode == "vrx", 5.0)
    assert b.dev.tx_underruns == 0 and b.dev.tx_overflow_bytes == 0
    assert len(b.dev.transmitted()) == 24000


def test_underrun_raises_the_lead_and_loses_no_audio() -> None:
    # the driver's loop runs every 60 ms with a 20 ms lead: the modem's buffer runs dry until the lead
    # covers a loop period
    b, port = answered_call("usr5637", engine_every=12, tx_lead_ms=20)
    prompt = caller_audio(16000, seed=4)
    port.queue_tx(prompt)
    b.run_until(lambda: b.dev.vtx_count == 1 and b.dev.mode == "vrx", 10.0)
    assert b.dev.tx_underruns >= 1
    assert b.eng.tx_underruns == b.dev.tx_underruns
    assert b.eng.tx_lead_ms == 20 + 40 * b.eng.tx_underruns >= 60  # 60 ms covers the 60 ms loop
    assert np.array_equal(b.dev.transmitted(), line_roundtrip("ulaw", prompt))


class BargePort(SilencePort):
    def stop(self) -> None:
        self._tx = self._tx[: self._tx_pos]


def test_barge_in_flushes_the_queued_prompt() -> None:
    b, _ = answered_call("cx93010")
    barge = BargePort()
    b.eng._port = barge  # the runtime's port for this leg (same engine, a port that can stop its prompt)
    prompt = caller_audio(24000, seed=6)
    barge.queue_tx(prompt)
    b.run_until(lambda: b.dev.mode == "vtx", 5.0)
    b.run(0.5)
    b.dev.send_dtmf("5", on_ms=200)
    b.run_until(lambda: bool(b.of(DigitReceived)), 1.0)
    barge.stop()  # the runtime stops the prompt on the digit
    sent_at = len(b.dev.received)
    b.run_until(lambda: b.dev.mode == "vrx", 2.0)
    assert b"\x10\x18\x10\x03" in bytes(b.dev.received[sent_at - 8:])
    assert b.dev.tx_cleared_bytes > 0
    played = b.dev.transmitted()
    assert 0.5 * 8000 <= len(played) < 0.5 * 8000 + 200 * 8  # cut within the press, not after the lead
    assert np.array_equal(played, line_roundtrip("u8", prompt)[: len(played)])
    b.run(0.5)
    assert [d.digit for d in b.of(DigitReceived)] == ["5"]


# ------------------------------------------------------------------------------------------ remote hang-up
@pytest.mark.parametrize(("signal", "reason", "delay", "extra"), [
    ("cpc", "cpc", 0, {}),
    ("busy", "busy-tone", 16000, {}),
    ("reorder", "busy-tone", 16000, {}),
    ("dial", "dial-tone", 8000, {}),
    ("polarity", "polarity", 0, {"hangup_events": (*DEFAULT_HANGUP_EVENTS, ("L", "polarity"))}),
    ("silence", "silence", 0, {"modem_silence_s": 3.0, "silence_timeout_s": 0.0}),  # the modem's DLE q
    ("silence", "silence", 0, {"modem_silence_s": 0.0, "silence_timeout_s": 2.0}),  # software supervision
])
def test_each_remote_hangup_signal(signal: str, reason: str, delay: int, extra: dict[str, object]) -> None:
    b, port = answered_call("usr5637", **extra)
    off = offset_by_marker(b, port)
    b.dev.play(caller_audio(16000))
    b.run(1.0)
    h = b.dev.hang_up(signal)  # while the caller is still talking  # type: ignore[arg-type]
    took = b.run_until(lambda: bool(b.of(RemoteHangup)), 10.0)
    hup = b.of(RemoteHangup)
    assert [(e.reason, e.leg_id) for e in hup] == [(reason, "line1-1")]
    silence_s = float(extra.get("modem_silence_s", 0.0) or extra.get("silence_timeout_s", 0.0) or 0.0)  # type: ignore[arg-type]
    budget = delay / 8000 + (silence_s if signal == "silence" else 0.0) + 0.05
    assert took <= budget
    tail = hup[0].tail_start_pts
    if signal == "silence":
        assert tail == h + off  # where the silence began, not where it was noticed
        rx = received(port)
        assert np.all(np.abs(rx[tail:].astype(np.int32)) < 100)  # what follows the cut is the line, not the caller
        assert np.abs(rx[tail - 160:tail].astype(np.int32)).mean() > 1000
    else:
        assert tail == h + delay + off  # the DLE event's position in the stream
        assert port.received[-1].end_pts <= tail  # nothing after the signal was delivered
    b.run_until(lambda: b.eng.state is State.READY, 10.0)
    assert not b.dev.off_hook


@pytest.mark.parametrize(("code", "reason"), [("H", "handset-off-hook"), ("P", "extension-off-hook"),
                                              ("R", "ring")])
def test_local_pick_up_and_new_ring_end_the_call(code: str, reason: str) -> None:
    b, _ = answered_call("cx93010")
    b.dev.send_event(code)
    b.run(0.1)
    assert [e.reason for e in b.of(RemoteHangup)] == [reason]


def test_max_call_length() -> None:
    b, _ = answered_call("usr5637", max_call_s=2.0, silence_timeout_s=0.0, modem_silence_s=0.0)
    took = b.run_until(lambda: bool(b.of(RemoteHangup)), 5.0)
    assert b.of(RemoteHangup)[0].reason == "max-duration" and b.of(RemoteHangup)[0].tail_start_pts is None
    assert b.eng.leg_pts == 16000
    assert took < 2.1


def test_local_hangup_goes_on_hook_without_an_event_and_next_call_works() -> None:
    b, _ = answered_call("cx93010")
    b.eng.hangup("line1-1", b.now)
    b.run_until(lambda: b.eng.state is State.READY, 10.0)
    assert b.of(RemoteHangup) == [] and not b.dev.off_hook
    k = b.dev.commands.index("ATH")
    # ATZ forgets +VCID on this chip: it is sent again after the reset
    assert b.dev.commands[k + 1:k + 5] == ["AT", "ATZ", "ATE0V1Q0", "AT+VCID=1"]
    port2 = SilencePort()
    b.dev.ring(CallerId(number="5559999", name="SECOND"), rings=6)
    b.run_until(lambda: len(b.of(IncomingCall)) == 2, 5.0)
    assert b.of(IncomingCall)[1].caller == "5559999"  # caller ID still works after the reset
    b.eng.answer("line1-2", port2, b.now)
    b.run_until(lambda: b.dev.mode == "vrx", 5.0)
    audio = caller_audio(1600)
    b.dev.play(audio)
    b.run(0.5)
    rx = received(port2)
    at = first_loud(rx)
    assert np.array_equal(rx[at:at + 1600], line_roundtrip("u8", audio))


def test_call_waiting_caller_id_during_a_call_is_ignored() -> None:
    b, port = answered_call("usr5637")
    port.queue_tx(caller_audio(1600))
    b.run_until(lambda: b.dev.vtx_count == 1 and b.dev.mode == "command", 5.0)
    b.dev.garbage(b"\r\nDATE=0117\r\nTIME=1331\r\nNMBR=5550199\r\nNAME=WAITING\r\n")
    b.dev.send_event("w")
    b.run(2.0)
    assert b.eng.ignored_cid_lines == 4
    assert len(b.of(IncomingCall)) == 1 and len(b.of(CallerIdReceived)) == 1
    assert b.in_call() and b.dev.mode == "vrx"


def test_garbage_on_the_wire_is_tolerated() -> None:
    rng = np.random.default_rng(3)
    b = Bench("usr5637")
    b.dev.garbage(rng.integers(0, 256, 3000).astype(np.uint8).tobytes() + b"\r\n")
    b.run(0.2)
    assert b.eng.state is State.READY
    b.dev.ring(CallerId(number="5551234"), rings=6)
    port = SilencePort()
    b.answer_next_call(port)
    b.run_until(lambda: b.dev.mode == "vrx", 10.0)
    for _ in range(20):  # corrupted audio bytes, and DLE codes nobody defined, inside the audio stream
        junk = rng.integers(0, 256, 200).astype(np.uint8)
        junk[junk == 0x10] = 0x11
        b.dev.garbage(junk.tobytes() + b"\x10%\x10Z\x10\x00\x10\xff")
        b.run(0.05)
    assert b.in_call() and b.of(RemoteHangup) == []
    b.dev.hang_up("cpc")
    b.run(0.5)
    assert [e.reason for e in b.of(RemoteHangup)] == ["cpc"]


def test_device_lost_ends_the_call_and_reopen_reinitialises() -> None:
    b, _ = answered_call("usr5637")
    b.run(0.5)
    pts = b.eng.leg_pts
    b.eng.device_lost(b.now, "read failed")
    assert b.eng.next_event() == RemoteHangup("line1", "line1-1", reason="device-lost", tail_start_pts=pts)
    assert b.eng.next_event() == LineStatus("line1", "", state="down", detail="read failed")
    b.dev.power_on()  # re-enumerated: a fresh device
    b.eng.device_opened(b.now)
    b.run_until(lambda: b.eng.state is State.READY, 10.0)
    assert [e.state for e in b.of(LineStatus)] == ["up", "recovering", "up"]
    assert b.dev.fclass == 8 and b.dev.vcid == 1


def test_zoom_learns_the_triple_dle_exit() -> None:
    b, port = answered_call("zoom3095")
    port.queue_tx(caller_audio(800))
    b.run_until(lambda: b.dev.vtx_count == 1 and b.dev.mode == "vrx", 10.0)
    assert b.eng.session.learned_triple_dle
    port.queue_tx(caller_audio(800))
    took = b.run_until(lambda: b.dev.vtx_count == 2 and b.dev.mode == "vrx", 10.0)
    assert took < 0.5  # no more fallback timeouts
    assert bytes(b.dev.received).count(b"\x10\x10\x10!") >= 2


def test_packets_and_aliases_during_a_call() -> None:
    b, _ = answered_call("usr5637")
    b.dev.garbage(b"\x10Xl\x10.")  # a complex event packet whose payload happens to be "l"
    b.run(0.2)
    assert b.in_call() and b.of(RemoteHangup) == []
    b.dev.send_event("K")  # vgetty's alias for busy
    b.run(0.1)
    assert [e.reason for e in b.of(RemoteHangup)] == ["busy-tone"]


@pytest.mark.parametrize(("signal", "reason"),
                         [("busy", "busy-tone"), ("reorder", "reorder-tone"), ("dial", "dial-tone")])
def test_software_call_progress_ends_the_call_where_the_tone_began(signal: str, reason: str) -> None:
    """media.progress on the received audio: the cut is where the tone began, not where the modem said so."""
    from drivers.modem.supervision import ToneSupervisor
    from media.progress import ProgressDetector

    only_dle = tuple(e for e in DEFAULT_HANGUP_EVENTS if e[0] not in ("b", "d"))  # the modem stays quiet
    b, port = answered_call("usr5637", hangup_events=only_dle, modem_silence_s=0.0,
                            supervisors=[lambda: ToneSupervisor(lambda: ProgressDetector("us"))])
    off = offset_by_marker(b, port)
    b.dev.play(caller_audio(16000))
    b.run(1.0)
    h = b.dev.hang_up(signal)  # type: ignore[arg-type]
    took = b.run_until(lambda: bool(b.of(RemoteHangup)), 10.0)
    [hup] = b.of(RemoteHangup)
    assert hup.reason == reason
    assert took <= 2.2  # two busy cycles, one second of dial tone, plus a frame
    assert hup.tail_start_pts is not None and abs(hup.tail_start_pts - (h + off)) <= 80  # within 10 ms


def test_modem_dial_tone_report_cuts_where_the_tone_began_in_the_audio() -> None:
    """DLE d comes ~1 s into the dial tone, before the software detector decides: the cut goes back to the
    onset the software detector saw in the received audio (in samples), not the event's position."""
    from drivers.modem.supervision import ToneSupervisor
    from media.progress import ProgressDetector

    b, port = answered_call("usr5637", modem_silence_s=0.0,
                            supervisors=[lambda: ToneSupervisor(lambda: ProgressDetector("us", dial_min_s=3.0))])
    off = offset_by_marker(b, port)
    b.dev.play(caller_audio(16000))
    b.run(1.0)
    h = b.dev.hang_up("dial")
    b.run_until(lambda: bool(b.of(RemoteHangup)), 10.0)
    [hup] = b.of(RemoteHangup)
    assert hup.reason == "dial-tone"  # from DLE d: the software detector would need 3 s here
    assert hup.tail_start_pts is not None and abs(hup.tail_start_pts - (h + off)) <= 80  # within 10 ms


def test_modem_tone_report_without_the_tone_in_the_audio_cuts_at_the_report() -> None:
    """No tone detector on the line (or no tone heard): the DLE event's position is the cut."""
    b, port = answered_call("usr5637", modem_silence_s=0.0)
    off = offset_by_marker(b, port)
    b.dev.play(caller_audio(16000))
    b.run(1.0)
    h = b.dev.hang_up("dial")
    b.run_until(lambda: bool(b.of(RemoteHangup)), 10.0)
    [hup] = b.of(RemoteHangup)
    late = round(b.dev.profile.dial_detect_s * 8000)  # where the emulated modem reports it
    assert hup.reason == "dial-tone" and hup.tail_start_pts is not None
    assert abs(hup.tail_start_pts - (h + off) - late) <= 400


def test_polarity_reversal_ends_the_call_where_configured_after_the_answer_guard() -> None:
    from drivers.modem.config import POLARITY_EVENT

    b, port = answered_call("cx93010", hangup_events=(*DEFAULT_HANGUP_EVENTS, POLARITY_EVENT))
    assert b.eng.leg_pts < 600 * 8
    b.dev.send_event("L")  # the exchange reverses on answer (answer supervision): not a disconnect
    b.run(0.2)
    assert b.in_call() and b.of(RemoteHangup) == []
    off = offset_by_marker(b, port)
    b.dev.play(caller_audio(8000))
    b.run(1.2)
    h = b.dev.hang_up("polarity")
    b.run_until(lambda: bool(b.of(RemoteHangup)), 5.0)
    [hup] = b.of(RemoteHangup)
    assert hup.reason == "polarity"
    assert hup.tail_start_pts is not None and abs(hup.tail_start_pts - (h + off)) <= 160


def test_polarity_reversal_is_no_disconnect_unless_configured() -> None:
    b, _ = answered_call("cx93010")
    b.run(1.0)
    b.dev.hang_up("polarity")
    b.run(0.5)
    assert b.in_call() and b.of(RemoteHangup) == []


# ------------------------------------------------------------------------------------------ seizing (gatewayd levels)
def test_seize_goes_off_hook_without_a_call_and_receives_the_line() -> None:
    b = Bench("usr5637")
    port = SilencePort()
    b.eng.seize("probe", port, b.now)
    b.run_until(lambda: b.dev.mode == "vrx", 5.0)
    assert b.dev.off_hook and b.dev.rings_sent == 0 and b.dev.ata_count == 0
    line = caller_audio(1600, seed=4)
    at = b.dev.play(line)
    b.run(0.5)
    got = received(port)
    start = first_loud(got)
    assert np.array_equal(got[start:start + 1600], line_roundtrip("ulaw", line)) and start >= at
    assert b.events[1:] == []  # no IncomingCall, no hang-up
    b.eng.hangup("probe", b.now)
    b.run_until(lambda: not b.dev.off_hook and b.eng.state is State.READY, 10.0)


def test_seize_is_refused_while_a_call_rings() -> None:
    b = Bench("usr5637")
    b.dev.ring(None, rings=6)
    b.run_until(lambda: b.dev.rings_sent == 1, 5.0)
    b.eng.seize("probe", SilencePort(), b.now)
    b.run(0.1)
    assert b.of(CallFailed) == [CallFailed("line1", "probe", 486, "a call is ringing")]
    assert not b.dev.off_hook
