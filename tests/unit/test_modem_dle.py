import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modem.dle import (
    DecoderState,
    DleDecoder,
    DleEvent,
    DleKind,
    Item,
    encode,
    exit_sequence,
    kind_of,
)

D = b"\x10"


def merged(items: list[Item]) -> list[Item]:
    """Join adjacent data chunks so outputs of differently split feeds compare equal."""
    out: list[Item] = []
    for it in items:
        if isinstance(it, bytes) and out and isinstance(out[-1], bytes):
            out[-1] = out[-1] + it
        elif not (isinstance(it, bytes) and not it):
            out.append(it)
    return out


def decode_split(stream: bytes, cuts: list[int]) -> tuple[list[Item], bytes, DecoderState]:
    dec = DleDecoder()
    items: list[Item] = []
    prev = 0
    for c in [*cuts, len(stream)]:
        items += dec.feed(stream[prev:c])
        prev = c
    return merged(items), dec.trailing, dec.state


# A stream with every construct: doubled data, SUB, events, a DTMF group with repeats, a packet,
# a bare digit, a second group of the same digit, 0x7F end, and ETX followed by command text.
RICH = (b"ab" + D + D + b"c" + D + b"\x1a" + b"d" + D + b"b" + b"ef"
        + D + b"/" + D + b"5" + b"gh" + D + b"5" + D + b"5" + D + b"~"
        + D + b"X" + b"NMBR=555" + D + D + b"1" + D + b"." + b"i"
        + D + b"#" + D + b"/" + D + b"5" + D + b"\x7f" + D + b"l" + b"jk"
        + D + b"\x03" + b"\r\nOK\r\n")
RICH_ITEMS: list[Item] = [
    b"ab\x10c\x10\x10d",
    DleEvent(DleKind.BUSY, "b", 7),
    b"ef",
    DleEvent(DleKind.DTMF, "5", 9),
    b"gh",
    DleEvent(DleKind.PACKET, "NMBR=555\x101", 11),
    b"i",
    DleEvent(DleKind.DTMF, "#", 12),
    DleEvent(DleKind.DTMF, "5", 12),
    DleEvent(DleKind.LOOP_INTERRUPT, "l", 12),
    b"jk",
    DleEvent(DleKind.END, "", 14),
]


def test_rich_stream_in_one_read() -> None:
    items, trailing, state = decode_split(RICH, [])
    assert items == RICH_ITEMS
    assert trailing == b"\r\nOK\r\n"
    assert state == DecoderState(pending_dle=False, in_dtmf_group=False, group_digit="", in_packet=False,
                                 ended=True, data_bytes=14, suppressed_repeats=2)


def test_rich_stream_split_at_every_offset() -> None:
    for cut in range(len(RICH) + 1):
        items, trailing, state = decode_split(RICH, [cut])
        assert items == RICH_ITEMS, cut
        assert trailing == b"\r\nOK\r\n", cut
        assert state.data_bytes == 14 and state.ended and state.suppressed_repeats == 2


def test_rich_stream_random_multi_splits() -> None:
    rng = random.Random(1234)
    for _ in range(500):
        k = rng.randint(2, 20)
        cuts = sorted(rng.sample(range(len(RICH) + 1), k))
        items, trailing, _ = decode_split(RICH, cuts)
        assert items == RICH_ITEMS, cuts
        assert trailing == b"\r\nOK\r\n"


def test_byte_by_byte_state_after_each_step() -> None:
    dec = DleDecoder()
    stream = b"x" + D + D + D + b"/" + D + b"7" + D + b"7" + D + b"~" + D + b"\x03" + b"O"
    expected: list[tuple[list[Item], DecoderState]] = [
        ([b"x"], DecoderState(False, False, "", False, False, 1, 0)),
        ([], DecoderState(True, False, "", False, False, 1, 0)),
        ([b"\x10"], DecoderState(False, False, "", False, False, 2, 0)),
        ([], DecoderState(True, False, "", False, False, 2, 0)),
        ([], DecoderState(False, True, "", False, False, 2, 0)),
        ([], DecoderState(True, True, "", False, False, 2, 0)),
        ([DleEvent(DleKind.DTMF, "7", 2)], DecoderState(False, True, "7", False, False, 2, 0)),
        ([], DecoderState(True, True, "7", False, False, 2, 0)),
        ([], DecoderState(False, True, "7", False, False, 2, 1)),
        ([], DecoderState(True, True, "7", False, False, 2, 1)),
        ([], DecoderState(False, False, "", False, False, 2, 1)),
        ([], DecoderState(True, False, "", False, False, 2, 1)),
        ([DleEvent(DleKind.END, "", 2)], DecoderState(False, False, "", False, True, 2, 1)),
        ([], DecoderState(False, False, "", False, True, 2, 1)),
    ]
    assert len(stream) == len(expected)
    for i, (want_items, want_state) in enumerate(expected):
        assert dec.feed(stream[i:i + 1]) == want_items, i
        assert dec.state == want_state, i
    assert dec.take_trailing() == b"O"
    assert dec.trailing == b""


def test_dtmf_one_digit_per_key_press() -> None:
    group = D + b"/" + (D + b"3") * 6 + D + b"~"
    items, _, state = decode_split(group * 3, [])
    assert items == [DleEvent(DleKind.DTMF, "3", 0)] * 3
    assert state.suppressed_repeats == 15
    # bare digits (no shielding) are one press each; a different digit inside a group is a new press
    items, _, _ = decode_split(D + b"1" + D + b"1" + D + b"/" + D + b"2" + D + b"9" + D + b"9" + D + b"~", [])
    assert [e.code for e in items if isinstance(e, DleEvent)] == ["1", "1", "2", "9"]


def test_group_end_by_del_and_new_group_without_end() -> None:
    s = D + b"/" + D + b"A" + D + b"\x7f" + D + b"/" + D + b"A" + D + b"/" + D + b"A" + D + b"A"
    items, _, state = decode_split(s, [])
    assert [e.code for e in items if isinstance(e, DleEvent)] == ["A", "A", "A"]
    assert state.in_dtmf_group and state.group_digit == "A"


def test_event_codes_are_typed() -> None:
    codes = "bdlLsqhHpPRuo"
    items, _, _ = decode_split(b"".join(D + c.encode() for c in codes) + D + b"%", [])
    assert [e.kind for e in items if isinstance(e, DleEvent)] == [
        DleKind.BUSY, DleKind.DIAL_TONE, DleKind.LOOP_INTERRUPT, DleKind.POLARITY_REVERSAL,
        DleKind.PRESUMED_HANGUP, DleKind.QUIET, DleKind.HANDSET_ON_HOOK, DleKind.HANDSET_OFF_HOOK,
        DleKind.EXTENSION_ON_HOOK, DleKind.EXTENSION_OFF_HOOK, DleKind.RING, DleKind.TX_UNDERRUN,
        DleKind.RX_OVERRUN, DleKind.UNKNOWN]
    assert kind_of("D") is DleKind.DTMF and kind_of("d") is DleKind.DIAL_TONE
    assert kind_of("#") is DleKind.DTMF and kind_of("K") is DleKind.BUSY


def test_sub_is_two_data_dles() -> None:
    items, _, state = decode_split(b"a" + D + b"\x1a" + b"b", [])
    assert items == [b"a\x10\x10b"]
    assert state.data_bytes == 4


def test_runaway_packet_is_abandoned() -> None:
    dec = DleDecoder()
    dec.feed(D + b"X" + b"z" * 600)
    assert not dec.state.in_packet
    assert dec.feed(b"tail") == [b"tail"]


def test_feeding_after_end_goes_to_trailing() -> None:
    dec = DleDecoder()
    assert dec.feed(b"a" + D + b"\x03" + b"\r\n") == [b"a", DleEvent(DleKind.END, "", 1)]
    assert dec.feed(b"OK\r\n") == []
    assert dec.take_trailing() == b"\r\nOK\r\n"


def test_encode_doubles_dle_only() -> None:
    assert encode(b"\x00\x10\x10\x11\x13\x03") == b"\x00\x10\x10\x10\x10\x11\x13\x03"


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=600), max_size=8))
def test_encode_then_decode_is_identity_at_any_split(data: bytes, cuts: list[int]) -> None:
    wire = encode(data)
    items, trailing, state = decode_split(wire, sorted(min(c, len(wire)) for c in cuts))
    assert b"".join(i for i in items if isinstance(i, bytes)) == data
    assert not any(isinstance(i, DleEvent) for i in items)
    assert state.data_bytes == len(data) and not state.pending_dle and trailing == b""


@given(st.binary(max_size=400))
def test_decoder_never_raises_on_garbage(data: bytes) -> None:
    dec = DleDecoder()
    items = dec.feed(data)
    total = sum(len(i) for i in items if isinstance(i, bytes))
    assert total == dec.data_bytes


def test_exit_sequences() -> None:
    assert exit_sequence(b"!") == b"\x10!"
    assert exit_sequence(b"\x03", triple=True) == b"\x10\x10\x10\x03"
    with pytest.raises(ValueError):
        exit_sequence(b"!!")


def test_open_dtmf_group_is_carried_into_the_next_data_state() -> None:
    first = DleDecoder()
    assert first.feed(D + b"/" + D + b"5") == [DleEvent(DleKind.DTMF, "5", 0)]
    nxt = DleDecoder(carry=first)  # +VTX aborted while the key is held; +VRX entered
    assert nxt.state.in_dtmf_group and nxt.state.group_digit == "5" and nxt.state.data_bytes == 0
    assert nxt.feed(D + b"5" + D + b"5" + D + b"~" + D + b"/" + D + b"5" + D + b"~") == [DleEvent(DleKind.DTMF, "5", 0)]
