"""AT session transcripts: the exact bytes the DTE sends for each chipset profile, replies fed back."""

import pytest

from drivers.modem.at import (
    AtSession,
    Audio,
    CidField,
    Dle,
    Done,
    Mode,
    Ring,
    SessionSettings,
    StreamEnded,
    TextLine,
)
from drivers.modem.codec import SampleFormat
from drivers.modem.dle import DleEvent, DleKind
from drivers.modem.profiles import CX93010, USR5637

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"

USR_VSM = (b'\r\n1,"UNSIGNED PCM",8,0,(7200,8000),(0),(0)\r\n'
           b'128,"8-BIT LINEAR",8,0,(7200,8000),(0),(0)\r\n'
           b'129,"ADPCM",4,0,(7200,8000),(0),(0)\r\n130,"UNSIGNED PCM",8,0,(7200,8000),(0),(0)\r\n'
           b'131,"ULAW",8,0,(7200,8000),(0),(0)\r\n132,"ALAW",8,0,(7200,8000),(0),(0)\r\n'
           b'133,"LINEAR",16,0,(7200,8000),(0),(0)\r\n' + OK)
CX_VSM = (b'\r\n1,"UNSIGNED PCM",8,0,8000,0,0\r\n129,"IMA ADPCM",4,0,8000,0,0\r\n'
          b'130,"UNSIGNED PCM",8,0,8000,0,0\r\n140,"2 Bit ADPCM",2,0,8000,0,0\r\n'
          b'141,"4 Bit ADPCM",4,0,8000,0,0\r\n' + OK)
V253_VSM = (b'\r\n+VSM: 0,"SIGNED PCM",8,0,8000,0,0\r\n+VSM: 1,"UNSIGNED PCM",8,0,8000,0,0\r\n'
            b'+VSM: 4,"G.711U",8,0,8000,0,0\r\n+VSM: 5,"G.711A",8,0,8000,0,0\r\n' + OK)
INTEL_VSM = (b'\r\n0,"SIGNED PCM",8,0,(7200,8000,11025),0,0\r\n128,"8-BIT LINEAR",8,0,(7200,8000,11025),0,0\r\n'
             b'140,"ALAW",8,0,(8000),0,0\r\n' + OK)

IDENT = {
    "usr5637": (b"\r\n5601\r\n" + OK, b"\r\nU.S. Robotics 56K FAX USB V1.2.23\r\n" + OK, b"\r\nUSR5637\r\n" + OK),
    "cx93010": (b"\r\n56000\r\n" + OK, b"\r\nCX93001-EIS_V0.2002-V92\r\n" + OK, ERROR),
    "v253": (b"\r\n33600\r\n" + OK, b"\r\nAcme Voice 1.0\r\n" + OK, b"\r\nAcme V.253\r\n" + OK),
    "intel": (b"\r\n56000\r\n" + OK, b"\r\nIntel 536EP Data Fax Modem\r\n" + OK, ERROR),
}

# (command the DTE must send, the modem's reply)
INIT = {
    "usr5637": [
        (b"AT+VCID=1\r", OK), (b"AT+FCLASS=8\r", OK), (b"AT+VSM=?\r", USR_VSM), (b"AT+VSM=131,8000\r", OK),
        (b"AT+VSD=128,50\r", OK), (b"AT+IFC=2,2\r", OK),
    ],
    "cx93010": [
        (b"AT+VCID=1\r", OK), (b"AT+VCID?\r", b"\r\n1\r\n" + OK), (b"AT+FCLASS=8\r", OK), (b"AT+VSM=?\r", CX_VSM),
        (b"AT+VSM=1,8000,0,0\r", OK), (b"AT+VSD=0,50\r", OK), (b"AT-STE=7\r", OK),
    ],
    "v253": [
        (b"AT+VCID=1\r", OK), (b"AT+FCLASS=8\r", OK), (b"AT+VSM=?\r", V253_VSM), (b"AT+VSM=4,8000\r", OK),
        (b"AT+VSD=128,50\r", OK), (b"AT+IFC=2,2\r", OK),
    ],
    "intel": [
        (b"AT+VCID=1\r", OK), (b"AT+FCLASS=8\r", OK), (b"AT+VSM=?\r", INTEL_VSM), (b"AT+VSM=140,8000\r", OK),
        (b"AT+VSD=128,50\r", OK), (b"AT+IFC=2,2\r", OK),
    ],
}
CODEC = {"usr5637": (131, SampleFormat.ULAW), "cx93010": (1, SampleFormat.U8), "v253": (4, SampleFormat.ULAW),
         "intel": (140, SampleFormat.ALAW)}


def events(s: AtSession) -> list[object]:
    out = []
    while (e := s.next_event()) is not None:
        out.append(e)
    return out


def play(s: AtSession, script: list[tuple[bytes, bytes]], now: float = 0.0) -> None:
    for i, (sent, reply) in enumerate(script):
        assert s.data_to_send() == sent, (i, sent)
        s.feed(reply, now)


def init_script(profile: str) -> list[tuple[bytes, bytes]]:
    i0, i3, fmm = IDENT[profile]
    return [(b"AT\r", OK), (b"ATZ\r", OK), (b"ATE0V1Q0\r", OK), (b"ATI0\r", i0), (b"ATI3\r", i3),
            (b"AT+FMM?\r", fmm), *INIT[profile]]


def initialised(profile: str, settings: SessionSettings | None = None) -> AtSession:
    s = AtSession(settings)
    s.initialize(0.0)
    play(s, init_script(profile))
    assert events(s)[-1] == Done("initialize", True, f"{profile} {s.codec.name if s.codec else ''}")
    return s


@pytest.mark.parametrize("profile", ["usr5637", "cx93010", "v253", "intel"])
def test_init_sequence_exact_bytes_per_profile(profile: str) -> None:
    s = AtSession()
    s.initialize(0.0)
    play(s, init_script(profile))
    assert s.data_to_send() == b""
    assert s.take_flush() is True  # the flush after sync
    assert events(s) == [Done("initialize", True, f"{profile} {s.codec.name if s.codec else ''}")]
    assert s.profile is not None and s.profile.name == profile
    assert s.codec is not None and (s.codec.vsm_id, s.codec.fmt) == CODEC[profile]
    assert not s.busy and s.mode is Mode.COMMAND


def test_forced_profile_country_gains_and_extras() -> None:
    s = AtSession(SessionSettings(profile=CX93010, country="B4", codec_preference=("LINEAR8",), rx_gain=130,
                                  extra_init=("AT!4886=02",), vsd_sdi=0, rtscts=False))
    s.initialize(0.0)
    play(s, [(b"AT\r", OK), (b"ATZ\r", OK), (b"ATE0V1Q0\r", OK), (b"ATI0\r", b"\r\n5601\r\n" + OK),
             (b"ATI3\r", OK), (b"AT+FMM?\r", OK), (b"AT+GCI=B4\r", OK), (b"AT+VCID=1\r", OK),
             (b"AT+VCID?\r", b"\r\n+VCID: 1\r\n" + OK), (b"AT+FCLASS=8\r", OK), (b"AT+VSM=?\r", CX_VSM),
             (b"AT+VSM=1,8000,0,0\r", OK), (b"AT+VSD=0,0\r", OK), (b"AT-STE=7\r", ERROR),
             (b"AT+VGR=130\r", OK), (b"AT!4886=02\r", ERROR)])
    assert events(s)[-1] == Done("initialize", True, "cx93010 UNSIGNED PCM")
    assert s.profile is CX93010  # forced, although ATI0 said 5601


def test_echo_ring_and_caller_id_interleaved_with_replies() -> None:
    s = AtSession()
    s.initialize(0.0)
    assert s.data_to_send() == b"AT\r"
    s.feed(b"AT\r", 0.0)  # echo on after power-up
    s.feed(b"\r\nRING\r\n\r\nDATE = 0117\r\nNMBR=5551234\r", 0.0)
    s.feed(b"\n\r\nOK\r\n", 0.0)
    assert s.data_to_send() == b"ATZ\r"
    assert events(s) == [Ring(), CidField("DATE", "0117"), CidField("NMBR", "5551234")]
    s.feed(b"ATZ\r\r\nOK\r\n", 0.0)
    assert s.data_to_send() == b"ATE0V1Q0\r"
    s.feed(b"ATE0V1Q0\r\r\nOK\r\n", 0.0)
    assert s.data_to_send() == b"ATI0\r"
    s.feed(b"\r\n\x00\xff5601\r\nRING\r\n" + OK, 0.0)  # a line with control bytes keeps its printable part
    assert events(s) == [Ring()]
    assert s.identity == {} and s.garbage_lines == 1


def test_sync_retries_and_recovers_a_modem_left_in_voice_receive() -> None:
    s = AtSession(SessionSettings(profile=USR5637))
    s.initialize(0.0)
    assert s.data_to_send() == b"AT\r"
    s.feed(b"\x80\x7f\x81" * 100, 0.5)  # audio from a stuck +VRX: garbage to the line parser
    s.poll(0.99)
    assert s.data_to_send() == b""
    s.poll(1.0)  # AT timed out
    assert s.data_to_send() == b"\x10\x10\x10!\x10\x10\x10\x03\r"
    assert not s.take_flush()
    s.feed(b"\x10\x03\r\nOK\r\n", 1.1)  # the stuck modem leaves +VRX
    assert s.data_to_send() == b""
    s.poll(1.5)
    assert s.take_flush() is True
    assert s.data_to_send() == b"AT\r"
    s.feed(OK, 1.6)
    assert s.take_flush() is True
    assert s.data_to_send() == b"ATZ\r"
    assert [e for e in events(s) if not isinstance(e, TextLine)] == []


def test_sync_gives_up_after_the_configured_attempts() -> None:
    s = AtSession(SessionSettings(sync_attempts=2))
    s.initialize(0.0)
    s.poll(1.0)
    s.poll(1.5)
    s.poll(2.5)
    assert s.data_to_send().count(b"AT\r") == 2
    assert events(s) == [Done("initialize", False, "no answer to AT")]


def test_conexant_vcid_that_does_not_stick_is_sent_again() -> None:
    s = AtSession(SessionSettings(profile=CX93010))
    s.initialize(0.0)
    play(s, [(b"AT\r", OK), (b"ATZ\r", OK), (b"ATE0V1Q0\r", OK), (b"ATI0\r", OK), (b"ATI3\r", OK),
             (b"AT+FMM?\r", OK), (b"AT+VCID=1\r", OK), (b"AT+VCID?\r", b"\r\n0\r\n" + OK),
             (b"AT+VCID=1\r", OK), (b"AT+VCID?\r", b"\r\n1\r\n" + OK), (b"AT+FCLASS=8\r", ERROR)])
    assert events(s) == [Done("initialize", False, "not a voice modem (AT+FCLASS=8: ERROR)")]


def test_vcid_refused_falls_back_to_rockwell_form() -> None:
    s = AtSession(SessionSettings(profile=USR5637))
    s.initialize(0.0)
    play(s, [(b"AT\r", OK), (b"ATZ\r", OK), (b"ATE0V1Q0\r", OK), (b"ATI0\r", OK), (b"ATI3\r", OK),
             (b"AT+FMM?\r", OK), (b"AT+VCID=1\r", ERROR), (b"AT#CID=1\r", OK), (b"AT+FCLASS=8\r", OK)])


def test_command_timeout_is_driven_by_explicit_time() -> None:
    s = initialised("usr5637")
    s.answer(10.0)
    assert s.data_to_send() == b"AT+VLS=1\r"
    s.poll(14.99)
    assert events(s) == []
    s.poll(15.0)
    assert events(s) == [Done("answer", False, "TIMEOUT")]


@pytest.mark.parametrize("reply", [OK, b"\r\nVCON\r\n"])
def test_answer_is_vls1_never_ata(reply: bytes) -> None:
    s = initialised("cx93010")
    s.answer(0.0)
    assert s.data_to_send() == b"AT+VLS=1\r"
    s.feed(reply, 0.0)
    assert events(s) == [Done("answer", True, reply.strip().decode())]


def test_receive_audio_and_events_in_stream_order_with_positions() -> None:
    s = initialised("usr5637")
    s.start_rx(0.0)
    assert s.data_to_send() == b"AT+VRX\r"
    s.feed(b"\r\nCONNECT\r", 0.0)
    assert s.mode is Mode.VRX
    s.feed(b"\nab\x10\x10c\x10", 0.0)  # the LF ending CONNECT is not audio; DLE split across reads
    s.feed(b"b\xff\x10/\x10" + b"5\x10", 0.0)
    s.feed(b"5\x10~z", 0.0)
    assert events(s) == [
        Done("start_rx", True, "CONNECT"),
        Audio(b"ab\x10c", 0),
        Dle(DleEvent(DleKind.BUSY, "b", 4), Mode.VRX),
        Audio(b"\xff", 4),
        Dle(DleEvent(DleKind.DTMF, "5", 5), Mode.VRX),
        Audio(b"z", 5),
    ]


@pytest.mark.parametrize(("profile", "reply"), [
    ("usr5637", b"\x81\x82\x10\x03\r\nOK\r\n"),  # USR: DLE ETX, then OK
    ("cx93010", b"\x81\x82\r\nOK\r\n"),  # Conexant: just OK, straight after the audio
])
def test_stop_rx_reply_per_profile_then_next_command_gets_its_own_result(profile: str, reply: bytes) -> None:
    s = initialised(profile)
    s.start_rx(0.0)
    s.data_to_send()
    s.feed(b"\r\nCONNECT\r\n\x80\x80", 0.0)
    s.stop_rx(0.1)
    assert s.data_to_send() == b"\x10!"
    for i in range(0, len(reply), 3):  # in small pieces
        s.feed(reply[i:i + 3], 0.1)
    evs = events(s)
    assert evs[0] == Done("start_rx", True, "CONNECT") and evs[1] == Audio(b"\x80\x80", 0)
    assert evs[-1] == Done("stop_rx", True, "left data state")
    assert not any(isinstance(e, Audio) for e in evs[2:])  # what came after DLE ! is not delivered
    assert s.mode is Mode.COMMAND
    s.start_tx(0.2)
    assert s.data_to_send() == b"AT+VTX\r"
    s.feed(b"\r\nCONNECT\r\n", 0.2)
    assert events(s) == [Done("start_tx", True, "CONNECT")]


def test_usr_dle_etx_without_ok_ends_after_grace() -> None:
    s = initialised("usr5637")
    s.start_rx(0.0)
    s.feed(b"\r\nCONNECT\r\n", 0.0)
    s.stop_rx(0.0)
    s.data_to_send()
    s.feed(b"\x10\x03", 0.1)
    s.poll(1.0)
    assert events(s)[-1] == Done("start_rx", True, "CONNECT")
    s.poll(1.1)
    assert events(s) == [Done("stop_rx", True, "left data state")]


def test_stop_rx_falls_back_to_triple_dle() -> None:
    s = initialised("cx93010")
    s.start_rx(0.0)
    s.feed(b"\r\nCONNECT\r\n", 0.0)
    s.data_to_send()
    s.stop_rx(1.0)
    assert s.data_to_send() == b"\x10!"
    s.feed(b"\x80" * 50, 2.0)
    s.poll(3.0)
    assert s.data_to_send() == b"\x10\x10\x10!"
    s.feed(b"\r\nOK\r\n", 3.1)
    assert events(s)[-1] == Done("stop_rx", True, "left data state")


def test_forced_triple_dle_exit() -> None:
    s = initialised("cx93010", SessionSettings(exit_triple_dle=True))
    s.start_tx(0.0)
    s.feed(b"\r\nCONNECT\r\n", 0.0)
    s.data_to_send()
    s.stop_tx(0.0)
    assert s.data_to_send() == b"\x10\x10\x10\x03"


def test_transmit_doubles_dle_and_ends_after_drain() -> None:
    s = initialised("usr5637")
    s.start_tx(0.0)
    assert s.data_to_send() == b"AT+VTX\r"
    s.feed(b"\r\nCONNECT\r\n", 0.0)
    s.send_audio(b"\x01\x10\x02")
    assert s.data_to_send() == b"\x01\x10\x10\x02"
    s.feed(b"\x10/\x10#\x10#\x10~\x10u", 0.1)  # events arrive during VTX
    s.stop_tx(0.2, drain_s=0.3)
    s.send_audio(b"\x05")  # ignored once the end is sent
    assert s.data_to_send() == b"\x10\x03"
    s.poll(2.49)
    assert [e for e in events(s) if isinstance(e, Done)] == [Done("start_tx", True, "CONNECT")]
    s.feed(b"\r\nO", 0.6)
    s.feed(b"K\r\n", 0.6)
    assert events(s) == [Done("stop_tx", True, "left data state")]
    assert s.mode is Mode.COMMAND


def test_transmit_events_are_reported() -> None:
    s = initialised("usr5637")
    s.start_tx(0.0)
    s.feed(b"\r\nCONNECT\r\n\x10/\x10#\x10#\x10~\x10u", 0.0)
    assert events(s)[1:] == [Dle(DleEvent(DleKind.DTMF, "#", 0), Mode.VTX),
                             Dle(DleEvent(DleKind.TX_UNDERRUN, "u", 0), Mode.VTX)]


def test_abort_transmit_clears_buffer_first() -> None:
    s = initialised("cx93010")
    s.start_tx(0.0)
    s.feed(b"\r\nCONNECT\r\n", 0.0)
    s.data_to_send()
    s.stop_tx(0.0, abort=True, drain_s=5.0)
    assert s.data_to_send() == b"\x10\x18\x10\x03"
    s.poll(2.0)  # abort: no drain time is allowed for
    assert s.data_to_send() == b"\x10\x10\x10\x03"


def test_modem_ending_a_data_state_on_its_own_is_reported() -> None:
    s = initialised("usr5637")
    s.start_rx(0.0)
    s.feed(b"\r\nCONNECT\r\n\x80\x10\x03\r\nNO CARRIER\r\n", 0.0)
    assert events(s)[1:] == [Audio(b"\x80", 0), StreamEnded(Mode.VRX), TextLine("NO CARRIER")]
    assert s.mode is Mode.COMMAND


@pytest.mark.parametrize("profile", ["usr5637", "cx93010"])
def test_hang_up_from_receive_exact_bytes_then_reinit_resends_vcid(profile: str) -> None:
    s = initialised(profile)
    s.start_rx(0.0)
    s.feed(b"\r\nCONNECT\r\n", 0.0)
    s.data_to_send()
    s.hang_up(1.0)
    assert s.data_to_send() == b"\x10!"
    s.feed(b"\x10\x03\r\nOK\r\n" if profile == "usr5637" else b"\r\nOK\r\n", 1.0)
    assert s.take_flush() is True
    reinit = [(b"ATH\r", OK), (b"AT\r", OK), (b"ATZ\r", OK), (b"ATE0V1Q0\r", OK)] + [
        (sent, OK if sent != b"AT+VCID?\r" else b"\r\n1\r\n" + OK)
        for sent, _ in INIT[profile] if sent != b"AT+VSM=?\r"]
    play(s, reinit)
    assert s.data_to_send() == b""
    assert s.codec is not None
    assert [e for e in events(s) if isinstance(e, Done)][-1] == Done("hang_up", True, f"{profile} {s.codec.name}")


def test_hang_up_from_transmit_aborts_playback() -> None:
    s = initialised("usr5637")
    s.start_tx(0.0)
    s.feed(b"\r\nCONNECT\r\n", 0.0)
    s.data_to_send()
    s.hang_up(0.0, reinit=False)
    assert s.data_to_send() == b"\x10\x18\x10\x03"
    s.feed(OK, 0.1)
    assert s.take_flush()
    play(s, [(b"ATH\r", OK)])
    assert events(s)[-1] == Done("hang_up", True, "on-hook")


def test_busy_session_refuses_a_second_procedure() -> None:
    s = initialised("usr5637")
    s.answer(0.0)
    with pytest.raises(RuntimeError):
        s.start_rx(0.0)


def test_garbage_in_command_state_never_raises() -> None:
    import random
    rng = random.Random(7)
    s = initialised("usr5637")
    for _ in range(200):
        s.feed(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80))), 0.0)
    s.feed(b"\r\n", 0.0)
    assert all(isinstance(e, TextLine | Ring | CidField) for e in events(s))
    s.answer(1.0)
    assert s.data_to_send() == b"AT+VLS=1\r"
    s.feed(OK, 1.0)
    assert events(s) == [Done("answer", True, "OK")]
