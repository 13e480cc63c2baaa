"""FXO call logic on a virtual clock: cadence, caller-ID window, answer, abandon and every hang-up path."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from drivers.fxo.calllogic import CidWindow, Effect, Emit, FxoCallLogic, Media, Phase, Resync, SetHook
from drivers.fxo.config import CidTiming, FxoConfig
from drivers.fxo.seams import CallerIdRecord, ToneHit
from drivers.line import CallerIdReceived, CallFailed, IncomingCall, RemoteHangup, Ringing

US = (2.0, 4.0)
UK = (0.4, 0.2, 0.4, 2.0)


class Rig:
    """Drives the logic like the shell does: board edges at board time = host time (+ offset)."""

    def __init__(self, board_offset_ms: int = 10_000, **cfg: Any) -> None:
        cfg.setdefault("device", "/dev/fxo0")
        self.cfg = FxoConfig(**cfg)
        ids = iter(f"leg{i}" for i in range(1, 100))
        self.logic = FxoCallLogic(self.cfg, new_leg_id=lambda: next(ids))
        self.ms = 0  # the virtual clock counts whole milliseconds
        self.pts = 0
        self.offset = board_offset_ms
        self.log: list[tuple[float, Effect]] = []

    @property
    def now(self) -> float:
        return self.ms / 1000

    def _take(self, effects: list[Effect]) -> list[Effect]:
        self.log += [(round(self.now, 3), e) for e in effects]
        return effects

    def board_ms(self) -> int:
        return (self.ms + self.offset) % 2**32

    def advance(self, seconds: float, step_ms: int = 10) -> None:
        end = self.ms + round(seconds * 1000)
        while self.ms < end:
            step = min(step_ms, end - self.ms)
            self.ms += step
            self.pts += step * 8
            self._take(self.logic.poll(self.now, self.pts))

    def ring(self, on: bool) -> list[Effect]:
        return self._take(self.logic.ring(on, self.board_ms(), self.now))

    def cycle(self, cadence: tuple[float, ...] = US) -> None:
        for i, d in enumerate(cadence):
            self.ring(i % 2 == 0)
            self.advance(d)

    def do(self, name: str, *args: Any) -> list[Effect]:
        return self._take(getattr(self.logic, name)(*args, self.now))

    def events(self) -> list[Any]:
        return [e.event for _, e in self.log if isinstance(e, Emit)]

    def at(self, kind: type) -> list[float]:
        return [t for t, e in self.log if isinstance(e, Emit) and isinstance(e.event, kind)]

    def effects(self, kind: type) -> list[tuple[float, Effect]]:
        return [(t, e) for t, e in self.log if isinstance(e, kind)]


def answered(rig: Rig) -> str:
    """Ring until offered, answer, acknowledge, loop current on: a connected call."""
    rig.cycle()
    assert rig.at(IncomingCall)
    leg = rig.events()[0].leg_id
    rig.do("answer", leg)
    for _ in range(rig.cfg.rings_to_answer):
        if rig.logic.phase == Phase.ANSWERING:
            break
        rig.ring(True)
        rig.advance(0.2)
    assert rig.logic.phase == Phase.ANSWERING
    rig.do("hook_ack", True)
    rig._take(rig.logic.loop(True, rig.now, rig.pts))
    assert rig.logic.phase == Phase.CONNECTED
    return leg


ALICE = CallerIdRecord(number="5551234567", name="ALICE", when="01021504")


def test_us_ring_cid_after_first_ring_then_answer_on_ring_two() -> None:
    rig = Rig()
    rig.ring(True)
    rig.advance(2.0)
    assert rig.ring(False) == [CidWindow(True)]  # window opens when ring 1 ends
    rig.advance(1.5)
    effects = rig.do("caller_id", ALICE)
    assert effects[0] == CidWindow(False)
    call = effects[1].event  # type: ignore[union-attr]
    assert call == IncomingCall("fxo", "leg1", caller="5551234567", called="", caller_name="ALICE",
                                headers={"X-Ring-Cadence": "2000"}, remote="/dev/fxo0")
    assert rig.do("answer", "leg1") == []  # rings_to_answer=2: not yet
    rig.advance(2.5)
    assert rig.logic.phase == Phase.RINGING
    rig.ring(True)
    rig.advance(0.14)
    assert rig.effects(SetHook) == []
    rig.advance(0.02)  # ring 2 is a ring once it lasted ring_min_ms
    assert rig.effects(SetHook) == [(6.15, SetHook(True))]
    assert rig.at(Ringing) == [6.15]
    assert rig.events()[-1] == Ringing("fxo", "leg1", count=2)
    assert rig.do("hook_ack", True) == [Media("leg1")]
    assert rig.logic.phase == Phase.CONNECTED


def test_no_caller_id_offers_once_when_the_window_closes() -> None:
    rig = Rig()
    rig.cycle()
    rig.cycle()
    assert rig.at(IncomingCall) == [6.0]  # window: 4.0 s after ring 1 ended
    assert [type(e) for e in rig.events()] == [IncomingCall, Ringing]
    assert rig.events()[0].caller == ""
    assert rig.events()[1].count == 2


def test_uk_double_ring_is_one_cycle_and_cadence_is_reported() -> None:
    rig = Rig(cid=CidTiming.NONE)
    for _ in range(3):
        rig.cycle(UK)
    events = rig.events()
    assert [type(e) for e in events] == [IncomingCall, Ringing, Ringing]
    assert events[0].headers == {"X-Ring-Cadence": "400,200,400"}
    assert [e.count for e in events[1:]] == [2, 3]
    assert rig.at(Ringing) == [3.15, 6.15]


def test_short_pulses_are_not_rings() -> None:
    rig = Rig(cid=CidTiming.NONE)
    rig.ring(True)
    rig.ms += 1
    rig.ring(False)
    rig.advance(10)
    assert rig.events() == [] and rig.logic.phase == Phase.IDLE
    assert rig.logic.counters.short_ring_pulses == 1


def test_abandoned_before_answer() -> None:
    rig = Rig()
    rig.cycle()
    rig.cycle((2.0,))
    rig.ring(False)  # ring 2 ends at 8.0; the caller gives up
    rig.advance(7.99)
    assert rig.at(RemoteHangup) == []
    rig.advance(0.02)
    assert rig.events()[-1] == RemoteHangup("fxo", "leg1", reason="abandoned")
    assert rig.at(RemoteHangup) == [16.0]
    assert rig.logic.phase == Phase.IDLE


def test_answer_waits_for_configured_ring_count() -> None:
    rig = Rig(rings_to_answer=3, cid=CidTiming.NONE)
    rig.cycle()
    assert rig.at(IncomingCall) == [3.0]  # the first cycle is complete 1 s after its burst
    rig.do("answer", "leg1")
    rig.cycle()
    assert rig.effects(SetHook) == []
    rig.ring(True)
    rig.advance(0.2)
    assert rig.effects(SetHook) == [(12.15, SetHook(True))]


def test_answer_on_first_ring_goes_off_hook_once_offered() -> None:
    rig = Rig(rings_to_answer=1, cid=CidTiming.NONE)
    rig.ring(True)
    rig.advance(2.0)
    rig.ring(False)
    rig.advance(1.0)
    assert rig.at(IncomingCall) == [3.0]
    assert rig.do("answer", "leg1") == [SetHook(True)]


def test_cpc_short_drop_is_a_glitch_long_drop_hangs_up_with_tail() -> None:
    rig = Rig(cid=CidTiming.NONE)
    leg = answered(rig)
    rig.advance(3.0)
    rig._take(rig.logic.loop(False, rig.now, rig.pts))
    rig.advance(0.3)
    rig._take(rig.logic.loop(True, rig.now, rig.pts))
    rig.advance(1.0)
    assert rig.at(RemoteHangup) == []
    assert rig.logic.counters.cpc_glitches == 1
    drop_pts = rig.pts
    t_drop = rig.now
    rig._take(rig.logic.loop(False, rig.now, rig.pts))
    rig.advance(0.59)
    assert rig.at(RemoteHangup) == []
    rig.advance(0.02)
    assert rig.events()[-1] == RemoteHangup("fxo", leg, reason="cpc", tail_start_pts=drop_pts)
    assert rig.at(RemoteHangup) == [round(t_drop + 0.6, 3)]
    assert [e for _, e in rig.log[-3:]] == [Emit(rig.events()[-1]), Media(None), SetHook(False)]
    assert rig.logic.phase == Phase.RELEASING
    assert rig.do("hook_ack", False) == []
    assert rig.logic.phase == Phase.IDLE


def test_no_loop_current_after_answer_is_a_disconnect() -> None:
    rig = Rig(cid=CidTiming.NONE, rings_to_answer=1)
    rig.cycle()
    rig.do("answer", "leg1")
    rig.do("hook_ack", True)
    t = rig.now
    rig.advance(1.09)
    assert rig.at(RemoteHangup) == []
    rig.advance(0.02)
    assert rig.events()[-1] == RemoteHangup("fxo", "leg1", reason="cpc", tail_start_pts=0)
    assert rig.at(RemoteHangup) == [round(t + 1.1, 3)]


def test_loop_current_reported_before_the_ack_counts() -> None:
    rig = Rig(cid=CidTiming.NONE, rings_to_answer=1)
    rig.cycle()
    rig.do("answer", "leg1")
    rig._take(rig.logic.loop(True, rig.now, rig.pts))  # board quirk: LOOP 1 before OK HOOK OFF
    rig.do("hook_ack", True)
    rig.advance(5)
    assert rig.at(RemoteHangup) == []
    assert rig.logic.phase == Phase.CONNECTED


def test_polarity_reversal_after_guard_hangs_up() -> None:
    rig = Rig(cid=CidTiming.NONE, hangup_on_polarity=True, polarity_guard_ms=600)
    leg = answered(rig)
    rig._take(rig.logic.polarity(False, rig.now, rig.pts))  # at answer: not a disconnect
    assert rig.at(RemoteHangup) == [] and rig.logic.counters.ignored_polarity == 1
    rig.advance(2.0)
    pts = rig.pts
    rig._take(rig.logic.polarity(True, rig.now, rig.pts))
    assert rig.events()[-1] == RemoteHangup("fxo", leg, reason="polarity", tail_start_pts=pts)


def test_polarity_ignored_when_not_configured() -> None:
    rig = Rig(cid=CidTiming.NONE, hangup_on_polarity=False)
    answered(rig)
    rig.advance(2.0)
    rig._take(rig.logic.polarity(True, rig.now, rig.pts))
    assert rig.at(RemoteHangup) == []


def test_tone_silence_and_max_duration() -> None:
    for kind in ("busy", "reorder", "dial"):
        rig = Rig(cid=CidTiming.NONE)
        leg = answered(rig)
        rig.do("tone", ToneHit(kind, 12_000))
        assert rig.events()[-1] == RemoteHangup("fxo", leg, reason=f"{kind}-tone", tail_start_pts=12_000)
    rig = Rig(cid=CidTiming.NONE, hangup_on_tones=False)
    answered(rig)
    assert rig.do("tone", ToneHit("busy", 1)) == []
    rig = Rig(cid=CidTiming.NONE)
    leg = answered(rig)
    rig.do("silence", 4000)
    assert rig.events()[-1] == RemoteHangup("fxo", leg, reason="silence", tail_start_pts=4000)
    rig = Rig(cid=CidTiming.NONE, max_call_s=30)
    leg = answered(rig)
    t = rig.now
    rig.advance(29.9)
    assert rig.at(RemoteHangup) == []
    rig.advance(0.2)
    assert rig.events()[-1] == RemoteHangup("fxo", leg, reason="max-duration", tail_start_pts=None)
    assert rig.at(RemoteHangup) == [round(t + 30, 3)]


def test_uk_caller_id_before_ring_after_line_reversal() -> None:
    rig = Rig(cid=CidTiming.BEFORE_RING, cid_standard="v23")
    assert rig._take(rig.logic.polarity(False, rig.now, 0)) == [CidWindow(True)]
    assert rig.logic.phase == Phase.ALERTED
    rig.advance(0.6)
    assert rig.do("caller_id", CallerIdRecord(number="", number_absent="P")) == [CidWindow(False)]
    rig.advance(0.5)
    rig.cycle(UK)
    assert rig.events() == [IncomingCall("fxo", "leg1", caller="anonymous", called="", caller_name="",
                                         headers={"X-Ring-Cadence": "400,200,400"}, remote="/dev/fxo0")]
    assert rig.at(IncomingCall) == [3.1]  # 1.1 s + the double ring + 1 s


def test_alert_without_ring_goes_back_to_idle_silently() -> None:
    rig = Rig(cid=CidTiming.BEFORE_RING)
    rig._take(rig.logic.polarity(False, rig.now, 0))
    rig.advance(10)
    assert rig.events() == [] and rig.logic.phase == Phase.IDLE
    assert [e for _, e in rig.effects(CidWindow)] == [CidWindow(True), CidWindow(False)]


def test_bad_checksum_caller_id_is_reported_but_not_trusted() -> None:
    rig = Rig()
    rig.cycle((2.0,))
    rig.ring(False)
    rig.advance(1.0)
    rig.do("caller_id", dataclasses.replace(ALICE, checksum_ok=False))
    assert [type(e) for e in rig.events()] == [IncomingCall, CallerIdReceived]
    assert rig.events()[0].caller == ""
    assert rig.events()[1] == CallerIdReceived("fxo", "leg1", caller="5551234567", caller_name="ALICE",
                                               checksum_ok=False)


def test_caller_id_after_second_ring_arrives_after_the_offer() -> None:
    rig = Rig(cid_after_ring=2, cid=CidTiming.AFTER_RING)
    rig.cycle()
    assert rig.events() == []  # waits for the spill after ring 2
    rig.cycle((2.0,))
    rig.ring(False)
    rig.advance(1.0)
    rig.do("caller_id", ALICE)
    assert [type(e) for e in rig.events()] == [IncomingCall]
    assert rig.events()[0].caller == "5551234567"


def test_hook_refused_fails_the_call_and_it_rings_out() -> None:
    rig = Rig(cid=CidTiming.NONE, rings_to_answer=1)
    rig.cycle()
    rig.do("answer", "leg1")
    assert rig.logic.phase == Phase.ANSWERING
    assert rig.do("hook_error", "STATE") == [Emit(CallFailed("fxo", "leg1", 503, "hook-refused STATE"))]
    rig.cycle()
    rig.cycle()
    rig.advance(10)
    assert [type(e) for e in rig.events()] == [IncomingCall, CallFailed]
    assert rig.logic.phase == Phase.IDLE


def test_no_hook_ack_fails_the_call_and_resyncs_the_board() -> None:
    rig = Rig(cid=CidTiming.NONE, rings_to_answer=1, hook_ack_timeout_s=2.0)
    rig.cycle()
    rig.do("answer", "leg1")
    t = rig.now
    rig.advance(2.05)
    assert rig.events()[-1] == CallFailed("fxo", "leg1", 503, "hook-timeout")
    assert rig.effects(Resync) == [(round(t + 2.0, 3), Resync("no reply to HOOK OFF"))]
    assert rig.logic.phase == Phase.IDLE


def test_device_lost_ends_ringing_and_connected_legs() -> None:
    rig = Rig(cid=CidTiming.NONE)
    rig.cycle()
    rig.do("device_lost", "gone")
    assert rig.events()[-1] == RemoteHangup("fxo", "leg1", reason="device-lost")
    rig = Rig(cid=CidTiming.NONE)
    leg = answered(rig)
    effects = rig.do("device_lost", "gone")
    assert effects == [Emit(RemoteHangup("fxo", leg, reason="device-lost")), Media(None)]  # no hook command
    assert rig.logic.phase == Phase.IDLE
    rig = Rig(cid=CidTiming.NONE)
    leg = answered(rig)
    effects = rig._take(rig.logic.audio_lost(rig.now))
    assert effects == [Emit(RemoteHangup("fxo", leg, reason="device-lost")), Media(None), SetHook(False)]


def test_hangup_while_ringing_ignores_the_rest_of_the_call() -> None:
    rig = Rig(cid=CidTiming.NONE)
    rig.cycle()
    rig.do("hangup", "leg1")
    rig.cycle()
    rig.cycle()
    rig.advance(9)
    assert [type(e) for e in rig.events()] == [IncomingCall]
    assert rig.logic.phase == Phase.IDLE
    rig.cycle()  # a new call gets a new leg
    assert rig.events()[-1].leg_id == "leg2"


def test_local_hangup_after_answer() -> None:
    rig = Rig(cid=CidTiming.NONE)
    leg = answered(rig)
    assert rig.do("hangup", leg) == [Media(None), SetHook(False)]
    assert rig.do("hook_ack", False) == []
    assert rig.logic.phase == Phase.IDLE
    assert rig.at(RemoteHangup) == []


def test_board_clock_wrap_inside_a_double_ring() -> None:
    rig = Rig(cid=CidTiming.NONE, board_offset_ms=2**32 - 500)
    rig.cycle(UK)
    rig.cycle(UK)
    events = rig.events()
    assert [type(e) for e in events] == [IncomingCall, Ringing]
    assert events[0].headers == {"X-Ring-Cadence": "400,200,400"}


def test_stuck_ring_is_taken_as_off() -> None:
    rig = Rig(cid=CidTiming.NONE)
    rig.ring(True)
    rig.advance(6.5)
    assert rig.logic.counters.stuck_rings == 1
    rig.advance(8.0)
    assert rig.events()[-1] == RemoteHangup("fxo", "leg1", reason="abandoned")


@pytest.mark.parametrize("bad", [dict(rings_to_answer=0), dict(audio_rate=44_101), dict(cid_standard="dtmf+v23"),
                                 dict(reopen_backoff_s=(0.0, 1.0)), dict(capture_ring_frames=1)])
def test_config_rejects_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FxoConfig(**bad)


# ------------------------------------------------------------------ seizing an idle line (gatewayd levels)
def test_seize_goes_off_hook_at_once_and_runs_like_an_answered_leg() -> None:
    rig = Rig()
    assert rig.do("seize", "probe") == [SetHook(True)]
    assert rig.logic.phase == Phase.ANSWERING
    assert rig.do("hook_ack", True) == [Media("probe")]
    rig._take(rig.logic.loop(True, rig.now, rig.pts))
    rig.advance(5.0)
    assert rig.logic.phase == Phase.CONNECTED and not [e for _, e in rig.log if isinstance(e, Emit)]
    assert rig.do("hangup", "probe") == [Media(None), SetHook(False)]
    assert rig.do("hook_ack", False) == [] and rig.logic.phase == Phase.IDLE


def test_seize_refused_while_a_call_rings_and_the_call_is_untouched() -> None:
    rig = Rig(cid=CidTiming.NONE)
    rig.cycle()
    assert rig.logic.phase == Phase.RINGING
    effects = rig.do("seize", "probe")
    assert effects == [Emit(CallFailed("fxo", "probe", 486, "a call is ringing"))]
    assert rig.logic.phase == Phase.RINGING and rig.logic.call is not None and rig.logic.call.leg_id == "leg1"


def test_seized_line_losing_loop_current_is_a_remote_hang_up() -> None:
    rig = Rig()
    rig.do("seize", "probe")
    rig.do("hook_ack", True)
    rig._take(rig.logic.loop(True, rig.now, rig.pts))
    rig.advance(1.0)
    rig._take(rig.logic.loop(False, rig.now, rig.pts))
    at = rig.pts
    rig.advance(1.0)
    hangups = [e.event for _, e in rig.log if isinstance(e, Emit) and isinstance(e.event, RemoteHangup)]
    assert hangups == [RemoteHangup("fxo", "probe", reason="cpc", tail_start_pts=at)]


def test_cid_after_second_ring_holds_the_answer_until_the_window_after_ring_two() -> None:
    rig = Rig(cid_after_ring=2, rings_to_answer=2)
    rig.cycle()
    assert rig.effects(CidWindow) == []  # ring 1 opens no window
    rig.ring(True)
    rig.advance(2.0)
    assert rig.ring(False) == [CidWindow(True)]
    rig.advance(3.0)  # the spill is late: no offer, no answer while the window is open
    assert rig.events() == [] and rig.effects(SetHook) == []
    rig.do("caller_id", ALICE)
    [call] = rig.events()
    assert call.caller == "5551234567"
    rig.do("answer", call.leg_id)
    assert [e for _, e in rig.effects(SetHook)] == [SetHook(True)]  # ring 2 was reached: answer now
    assert rig.logic.phase == Phase.ANSWERING


def test_dtmf_clip_on_the_idle_line_starts_the_call_before_its_ring() -> None:
    rig = Rig(cid=CidTiming.BEFORE_RING, cid_standard="dtmf")
    assert rig.logic.cid_listening  # idle: listening for DTMF CLIP, no alerting signal needed
    assert rig.do("caller_id", CallerIdRecord(number="5551230001")) == []
    assert rig.logic.phase == Phase.ALERTED and not rig.logic.cid_listening
    rig.advance(0.5)
    rig.cycle()
    assert rig.events() == [IncomingCall("fxo", "leg1", caller="5551230001", called="", caller_name="",
                                         headers={"X-Ring-Cadence": "2000"}, remote="/dev/fxo0")]
    assert rig.at(IncomingCall) == [3.5]  # the first ring cycle is complete (2 s + ring_group_gap_ms)


def test_dtmf_clip_and_fsk_after_ring_offer_once_the_first_ring_is_over() -> None:
    rig = Rig(cid=CidTiming.AFTER_RING, cid_standard="bell202+dtmf")
    rig.do("caller_id", CallerIdRecord(number="", number_absent="P"))
    rig.cycle()
    assert rig.effects(CidWindow) == []  # the caller ID is known: no FSK window after ring 1
    assert [e.caller for e in rig.events()] == ["anonymous"]


def test_idle_line_does_not_listen_without_dtmf_and_caller_id_is_ignored_there() -> None:
    rig = Rig(cid=CidTiming.BEFORE_RING, cid_standard="v23")
    assert not rig.logic.cid_listening
    assert rig.do("caller_id", ALICE) == [] and rig.logic.phase == Phase.IDLE


def test_dtmf_clip_heard_but_no_ring_is_forgotten() -> None:
    rig = Rig(cid=CidTiming.BEFORE_RING, cid_standard="dtmf")
    rig.do("caller_id", CallerIdRecord(number="5551230001"))
    rig.advance(10)
    assert rig.events() == [] and rig.logic.phase == Phase.IDLE and rig.logic.cid_listening
