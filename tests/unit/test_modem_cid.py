import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modem.cid import CidCollector, CidRecord, apply_field, parse_cid_line


@pytest.mark.parametrize(("line", "want"), [
    ("NMBR=5551234", ("NMBR", "5551234")),  # USR5637: no spaces
    ("NMBR = 5551234", ("NMBR", "5551234")),  # Conexant / Rockwell documents
    ("  nmbr =5551234  ", ("NMBR", "5551234")),
    ("DATE = 0117", ("DATE", "0117")),
    ("TIME=1330", ("TIME", "1330")),
    ("NAME = DOE JOHN", ("NAME", "DOE JOHN")),
    ("MESG = 080130", ("MESG", "080130")),
    ("DDN_NMBR= 0123456789", ("NMBR", "0123456789")),
    ("CALLER NUMBER: 0170123456", ("NMBR", "0170123456")),
    ("FM:0170123456", ("NMBR", "0170123456")),
    ('+CLIP: "+441234567890",145,,,"",0', ("NMBR", "+441234567890")),
    ("RING", None),
    ("OK", None),
    ("NAMEX=1", None),
    ("\x00\xff\x10garbage", None),
    ("", None),
])
def test_parse_cid_line(line: str, want: tuple[str, str] | None) -> None:
    assert parse_cid_line(line) == want


def test_private_and_unavailable_markers() -> None:
    r = apply_field(CidRecord(), "NMBR", "P")
    assert r.number == "" and r.number_absent == "P" and r.caller == "anonymous"
    r = apply_field(apply_field(CidRecord(), "NMBR", "O"), "NAME", "O")
    assert r.number_absent == "O" and r.name_absent == "O" and r.caller == ""
    assert not r.empty


def test_garbage_values_are_dropped_not_raised() -> None:
    r = CidRecord()
    for tag, value in [("DATE", "1x17"), ("TIME", "99"), ("NMBR", "--"), ("NAME", ""), ("BOGUS", "1")]:
        r = apply_field(r, tag, value)
    assert r == CidRecord()
    assert r.empty


def test_collector_completes_on_ring_in_any_order() -> None:
    c = CidCollector(settle_s=0.5)
    c.add("NAME", "DOE JOHN", 1.0)
    c.add("NMBR", "5551234", 1.01)
    c.add("TIME", "1330", 1.02)
    assert c.pending and c.deadline() == pytest.approx(1.52)
    assert c.poll(1.3) is None
    rec = c.flush()
    assert rec == CidRecord(number="5551234", name="DOE JOHN", time="1330")
    assert not c.pending and c.flush() is None


def test_collector_completes_after_settle_time_with_missing_fields() -> None:
    c = CidCollector(settle_s=0.5)
    c.add("DATE", "0117", 0.0)
    c.add("NMBR", "01234", 0.1)  # UK: no NAME
    assert c.poll(0.59) is None
    assert c.poll(0.6) == CidRecord(number="01234", date="0117")
    assert c.poll(5.0) is None


def test_collector_ignores_records_without_number_or_name() -> None:
    c = CidCollector()
    c.add("DATE", "0117", 0.0)
    c.add("TIME", "1330", 0.0)
    assert c.flush() is None


@given(st.text(max_size=120))
def test_parse_never_raises(line: str) -> None:
    r = parse_cid_line(line)
    if r is not None:
        tag, value = r
        assert tag in {"DATE", "TIME", "NMBR", "NAME", "MESG"}
        apply_field(CidRecord(), tag, value)
