"""The emulated V.253 modem on its own: each chip's quirks, on a virtual clock."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.emulators.modem import CallerId, ModemDevice, line_roundtrip

OK = b"\r\nOK\r\n"


def cmd(d: ModemDevice, line: str, now: float | None = None) -> bytes:
    d.receive(line.encode() + b"\r", d.now if now is None else now)
    return b"".join(d.poll(d.now))


def voice(d: ModemDevice, vsm: str = "131,8000") -> None:
    for c in ("ATE0", "AT+FCLASS=8", f"AT+VSM={vsm}", "AT+VLS=1"):
        cmd(d, c)


def test_echo_until_e0_and_verbose_results() -> None:
    d = ModemDevice("usr5637")
    assert cmd(d, "AT") == b"AT\r" + OK
    assert cmd(d, "ATE0V1Q0") == b"ATE0V1Q0\r" + OK
    assert cmd(d, "AT") == OK
    assert cmd(d, "ATI0") == b"\r\n5601\r\n" + OK
    assert cmd(d, "ATX9") == b"\r\nERROR\r\n"
    assert cmd(d, "ATA") == b"\r\nNO CARRIER\r\n" and d.ata_count == 1


def test_per_chip_command_quirks() -> None:
    cx = ModemDevice("cx93010")
    cmd(cx, "ATE0")
    assert cmd(cx, "AT+IFC=2,2") == b"\r\nERROR\r\n"
    assert cmd(cx, "AT+FMM?") == b"\r\nERROR\r\n"
    assert cmd(cx, "AT+FCLASS=8") == OK
    assert cmd(cx, "AT+VSD=128,50") == b"\r\nERROR\r\n" and cmd(cx, "AT+VSD=0,50") == OK
    assert cmd(cx, "AT-STE=7") == OK and cx.ste == 7
    assert cmd(cx, "AT!4886=02") == OK
    assert cmd(cx, "AT+VCID=1;&W") == OK
    cmd(cx, "ATZ")
    assert cmd(cx, "ATE0") == b"ATE0\r" + OK  # ATZ turned echo back on
    assert cmd(cx, "AT+VCID?") == b"\r\n0\r\n" + OK  # forgot +VCID despite &W
    usr = ModemDevice("usr5637")
    cmd(usr, "ATE0")
    assert cmd(usr, "AT-STE=7") == b"\r\nERROR\r\n"
    cmd(usr, "AT+VCID=1")
    cmd(usr, "AT&W")
    cmd(usr, "ATZ")
    assert usr.vcid == 1


def test_vsm_table_and_voice_commands_need_fclass_8() -> None:
    d = ModemDevice("v253")
    cmd(d, "ATE0")
    assert cmd(d, "AT+VSM=?") == b"\r\nERROR\r\n"
    assert cmd(d, "AT+VLS=1") == b"\r\nERROR\r\n"
    cmd(d, "AT+FCLASS=8")
    table = cmd(d, "AT+VSM=?")
    assert b'+VSM: 4,"G.711U",8,0,8000,0,0' in table
    assert cmd(d, "AT+VRX") == b"\r\nERROR\r\n"  # on-hook
    assert cmd(d, "AT+VSM=4,8000") == OK and cmd(d, "AT+VLS=1") == b"\r\nVCON\r\n"


def test_ringing_cadence_and_caller_id_spacing_per_chip() -> None:
    for profile, text in (("usr5637", b"\r\nDATE=0117\r\nTIME=1330\r\nNMBR=5551234\r\nNAME=DOE JOHN\r\n"),
                          ("cx93010", b"\r\nDATE = 0117\r\nTIME = 1330\r\nNMBR = 5551234\r\nNAME = DOE JOHN\r\n")):
        d = ModemDevice(profile, ring_on_s=2.0, ring_off_s=4.0)
        cmd(d, "ATE0")
        cmd(d, "AT+VCID=1")
        d.ring(CallerId(number="5551234", name="DOE JOHN"), rings=2)
        out = [(t, c) for t in np.arange(0.0, 13.0, 0.5) for c in d.poll(float(t))]
        assert out == [(0.0, b"\r\nRING\r\n"), (3.0, text), (6.0, b"\r\nRING\r\n")]  # CID after ring 1


def test_caller_id_before_ring_and_not_when_vcid_is_off() -> None:
    d = ModemDevice("cx93010", ring_on_s=2.0, ring_off_s=4.0, cid_before_ring=True)
    cmd(d, "ATE0")
    cmd(d, "AT+VCID=1")
    d.ring(CallerId(number="01632960123", name=None, number_absent=None), rings=1)
    out = [(t, c) for t in np.arange(0.0, 5.0, 0.5) for c in d.poll(float(t))]
    assert out == [(0.0, b"\r\nDATE = 0117\r\nTIME = 1330\r\nNMBR = 01632960123\r\n"), (2.0, b"\r\nRING\r\n")]
    cmd(d, "AT+VCID=0")
    d.ring(CallerId(number="1"), rings=1)
    assert b"".join(c for t in np.arange(5.0, 12.0, 0.5) for c in d.poll(float(t))) == b"\r\nRING\r\n\r\nRING\r\n"[:8]


def test_receive_stream_is_shielded_split_in_dle_pairs_and_exact() -> None:
    d = ModemDevice("intel")  # Intel: DLE SUB for two 0x10 data bytes
    d.now = 0.0
    voice(d, "0,8000")  # signed 8-bit
    assert cmd(d, "AT+VRX") == b"\r\nCONNECT\r\n"
    x = np.zeros(800, dtype=np.int16)
    x[10:12] = 0x10 * 256  # two 0x10 bytes in a row
    x[50] = 0x10 * 256
    x[100:700] = np.random.default_rng(0).integers(-20000, 20000, 600)
    d.play(x)
    d.send_event("b", delay_s=0.01)  # at sample 80
    chunks = [c for t in np.arange(0.005, 0.2, 0.005) for c in d.poll(float(t))]
    assert all(len(c) > 0 for c in chunks)
    assert any(c.endswith(b"\x10") and not c.endswith(b"\x10\x10") for c in chunks)  # split inside a pair
    wire = b"".join(chunks)
    assert b"\x10\x1a" in wire and b"\x10b" in wire
    k = wire.index(b"\x10b")
    body = wire[:k].replace(b"\x10\x1a", b"\x10\x10\x10\x10").replace(b"\x10\x10", b"\x10")
    assert len(body) == 80  # the event sits at its sample position
    rest = wire[k + 2:].replace(b"\x10\x1a", b"\x10\x10\x10\x10").replace(b"\x10\x10", b"\x10")
    got = np.frombuffer(body + rest, dtype=np.int8).astype(np.int16) * 256
    assert np.array_equal(got[:800], line_roundtrip("s8", x))


def test_dtmf_groups_repeat_every_70_ms() -> None:
    d = ModemDevice("cx93010")
    d.now = 0.0
    voice(d, "1,8000")
    cmd(d, "AT+VRX")
    d.send_dtmf("9", on_ms=200)
    wire = b"".join(c for t in np.arange(0.02, 0.5, 0.02) for c in d.poll(float(t)))
    events = [wire[i + 1:i + 2] for i in range(len(wire) - 1) if wire[i] == 0x10 and wire[i + 1] != 0x10]
    assert events == [b"/", b"9", b"9", b"9", b"~"]
    assert [p for p, _ in d.event_samples] == [0, 0, 560, 1120, 1600]


def test_dle_abort_reply_per_chip_and_zoom_triple_quirk() -> None:
    for profile, reply in (("usr5637", b"\x10\x03" + OK), ("cx93010", OK)):
        d = ModemDevice(profile)
        voice(d, "1,8000")
        cmd(d, "AT+VRX")
        d.receive(b"\x10!", 0.0)
        assert b"".join(d.poll(0.0)) == reply and d.mode == "command"
    z = ModemDevice("zoom3095")
    voice(z, "1,8000")
    cmd(z, "AT+VRX")
    z.receive(b"\x10!", 0.0)
    assert z.mode == "vrx"  # ignored
    z.receive(b"\x10\x10\x10!", 0.0)
    assert z.mode == "command"


def test_transmit_plays_at_8000_per_second_underrun_clear_and_end() -> None:
    d = ModemDevice("usr5637")
    d.now = 0.0
    voice(d)
    assert cmd(d, "AT+VTX") == b"\r\nCONNECT\r\n"
    d.receive(b"\x00" * 800 + b"\x10\x10" + b"\x01" * 799, 1.0)  # 200 ms queued at t=1.0
    d.poll(1.0)
    assert d.poll(1.1) == [] and len(d.tx_sessions[0].played) == 800
    assert d.poll(1.25) == [b"\x10u"] and d.tx_underruns == 1  # ran dry at 1.2 s, before DLE ETX
    assert d.poll(1.3) == []  # one report per underrun
    d.receive(b"\x02" * 1600, 2.0)
    d.poll(2.1)
    d.receive(b"\x10\x18", 2.1)  # DLE CAN: the rest is dropped
    assert d.tx_cleared_bytes == 800
    d.receive(b"\x03" * 400 + b"\x10\x03", 2.1)
    assert d.poll(2.1) == [] and d.poll(2.14) == [] and d.poll(2.15) == [OK]  # OK once it has played
    played = bytes(d.tx_sessions[0].played)
    assert played == b"\x00" * 800 + b"\x10" + b"\x01" * 799 + b"\x02" * 800 + b"\x03" * 400
    assert d.mode == "command"


def test_transmit_buffer_is_finite() -> None:
    d = ModemDevice("cx93010")
    voice(d, "1,8000")
    cmd(d, "AT+VTX")
    assert d.accept_limit() == 2048
    d.receive(b"\x80" * 3000, 0.0)
    assert d.tx_overflow_bytes == 952 and d.accept_limit() == 0


def test_hang_up_signals_on_the_line() -> None:
    d = ModemDevice("usr5637")
    d.now = 0.0
    voice(d, "132,8000")  # A-law
    cmd(d, "AT+VRX")
    h = d.hang_up("busy")
    wire = b"".join(c for t in np.arange(0.02, 2.2, 0.02) for c in d.poll(float(t)))
    assert d.event_samples == [(h + 16000, "b")]
    audio = np.frombuffer(wire.replace(b"\x10b", b"").replace(b"\x10\x10", b"\x10"), dtype=np.uint8)
    from media.g711 import alaw_decode
    pcm = alaw_decode(audio.tobytes()).astype(np.int32)
    on = np.abs(pcm[:4000]).mean()
    off = np.abs(pcm[4000:8000]).mean()
    assert on > 1000 and off < 20  # 0.5 s of 480+620 Hz, then 0.5 s of nothing
    c = ModemDevice("cx93010")
    voice(c, "1,8000")
    cmd(c, "AT+VRX")
    c.hang_up("cpc")  # no -STE bit 2: the Conexant says nothing about loop current
    assert b"\x10l" not in b"".join(x for t in np.arange(0.02, 0.5, 0.02) for x in c.poll(float(t)))


def test_seized_line_gives_dial_tone_then_its_noise_and_hum() -> None:
    from drivers.emulators.line_audio import Hum
    from media.g711 import alaw_decode
    from media.levels import dbm0

    d = ModemDevice("usr5637", line_noise_dbm0=-50.0, hum=Hum(60.0, (-45.0,)), dial_tone_s=1.0)
    d.now = 0.0
    voice(d, "132,8000")  # off-hook with no call ringing: the exchange gives dial tone
    cmd(d, "AT+VRX")
    wire = b"".join(c for t in np.arange(0.02, 3.0, 0.02) for c in d.poll(float(t)))
    assert d.event_samples == [(round(d.profile.dial_detect_s * 8000), "d")]
    body = wire.replace(b"\x10d", b"").replace(b"\x10\x10", b"\x10")
    pcm = alaw_decode(np.frombuffer(body, dtype=np.uint8).tobytes())
    assert dbm0(pcm[800:7200]) == pytest.approx(-10.0, abs=0.5)  # 350 + 440 Hz at -13 dBm0 each
    quiet = pcm[8800:22400]
    assert dbm0(quiet) == pytest.approx(10 * np.log10(10 ** -5.0 + 10 ** -4.5), abs=0.5)  # noise + hum power
    spectrum = np.abs(np.fft.rfft(quiet[:8000] * np.hanning(8000)))
    assert int(np.argmax(spectrum)) == 60  # 1 Hz bins: the hum line stands out


def test_answered_call_has_no_dial_tone() -> None:
    d = ModemDevice("usr5637", dial_tone_s=1.0, ring_on_s=0.1, ring_off_s=0.1)
    d.now = 0.0
    cmd(d, "ATE0")
    cmd(d, "AT+FCLASS=8")
    d.ring(None, rings=4)
    d.poll(0.15)
    cmd(d, "AT+VSM=132,8000")
    cmd(d, "AT+VLS=1")
    cmd(d, "AT+VRX")
    wire = b"".join(c for t in np.arange(0.2, 1.2, 0.02) for c in d.poll(float(t)))
    assert d.event_samples == [] and b"\x10d" not in wire
    assert set(wire) <= {0xD5}  # A-law silence: a digitally quiet line, as before
