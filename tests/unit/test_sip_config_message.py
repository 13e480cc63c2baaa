"""drivers/sip/config.py and drivers/sip/message.py (pure: no pjsua2)."""

from __future__ import annotations

import ipaddress

import pytest

from drivers.sip.config import SipConfigError, SipTrunkConfig, address_ip
from drivers.sip.message import (
    called_of,
    caller_from,
    name_addr,
    parse_dtmf_info,
    parse_message,
    passed_headers,
    uri_host_port,
    uri_param,
    uri_user,
    via_transport,
)

INVITE = (
    "INVITE sip:+15551230000@10.0.0.5:5070;transport=tcp SIP/2.0\r\n"
    "Via: SIP/2.0/TCP 192.0.2.7:5060;branch=z9hG4bK1\r\n"
    'f: "Alice \\"A\\" Smith" <sip:+15550001111@192.0.2.7>;tag=9\r\n'
    "To: <sip:+15551230000@10.0.0.5>\r\n"
    "X-Customer-Id: 42\r\n"
    "X-Long: first\r\n second line\r\n"
    "x-lower: v\r\n"
    "User-to-User: 56a390f3d2b7310023a2;encoding=hex\r\n"
    "Diversion: <sip:+15559998888@192.0.2.7>;reason=unconditional\r\n"
    "Subject: not passed\r\n"
    "Content-Length: 0\r\n\r\n"
)


def test_ip_peer_trunk_acl() -> None:
    c = SipTrunkConfig("t", allowed_peers=("192.0.2.0/24", "10.1.1.1"))
    assert not c.registration
    assert c.acl == (ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("10.1.1.1/32"))
    assert c.allows("192.0.2.77:5060") and c.allows("10.1.1.1") and c.allows("[::ffff:10.1.1.1]:5060")
    assert not c.allows("10.1.1.2:5060") and not c.allows("127.0.0.1:5060") and not c.allows("garbage")


def test_registration_trunk_allows_the_registrar() -> None:
    c = SipTrunkConfig("t", registrar="sip:127.0.0.2:5080", username="u", password="p")
    assert c.registration and c.account_domain == "127.0.0.2"
    assert c.allows("127.0.0.2:5080") and not c.allows("127.0.0.3:5060")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"allowed_peers": ()}, "needs allowed_peers"),
    ({"allowed_peers": ("nope",)}, "not an address or CIDR"),
    ({"allowed_peers": ("1.2.3.4",), "codecs": ("G729",)}, "only G.711"),
    ({"allowed_peers": ("1.2.3.4",), "codecs": ()}, "at least one codec"),
    ({"allowed_peers": ("1.2.3.4",), "transports": ("tls",)}, "not supported"),
    ({"allowed_peers": ("1.2.3.4",), "transports": ("udp", "udp")}, "duplicate"),
    ({"allowed_peers": ("1.2.3.4",), "bind_address": "localhost"}, "not an IP address"),
    ({"allowed_peers": ("1.2.3.4",), "port": 70000}, "out of range"),
    ({"allowed_peers": ("1.2.3.4",), "rtp_timeout_s": -1}, "rtp_timeout_s"),
    ({"registrar": "registrar.example", "username": "u"}, "must be a SIP URI"),
    ({"registrar": "sip:127.0.0.1"}, "needs a username"),
    ({"registrar": "sip:no-such-host.invalid", "username": "u"}, "cannot resolve"),
])
def test_bad_configs_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SipConfigError, match=message):
        SipTrunkConfig("t", **kwargs)  # type: ignore[arg-type]


def test_address_ip() -> None:
    assert str(address_ip("127.0.0.1:5060")) == "127.0.0.1"
    assert str(address_ip("[::1]:5060")) == "::1"
    assert address_ip("nonsense") is None


def test_parse_invite() -> None:
    m = parse_message(INVITE)
    assert m.method == "INVITE"
    assert m.request_uri == "sip:+15551230000@10.0.0.5:5070;transport=tcp"
    assert caller_from(m) == ("+15550001111", 'Alice "A" Smith')
    assert called_of(m) == "+15551230000"
    assert via_transport(m) == "tcp"
    assert uri_host_port(m.request_uri) == ("10.0.0.5", 5070)
    assert uri_param(m.request_uri, "transport") == "tcp"
    assert passed_headers(m) == {
        "X-Customer-Id": "42", "X-Long": "first second line", "x-lower": "v",
        "User-to-User": "56a390f3d2b7310023a2;encoding=hex",
        "Diversion": "<sip:+15559998888@192.0.2.7>;reason=unconditional",
    }


def test_anonymous_and_odd_uris() -> None:
    m = parse_message("INVITE sip:100@h SIP/2.0\r\nFrom: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=1\r\n\r\n")
    assert caller_from(m) == ("anonymous", "")
    assert uri_user("tel:+4930123;phone-context=x") == "+4930123"
    assert uri_user("sip:host.example") == ""
    assert uri_user("mailto:a@b") == ""
    assert uri_host_port("sip:u@[2001:db8::1]:5062") == ("2001:db8::1", 5062)
    assert uri_host_port("sip:u@h:notaport") == ("h", None)
    assert name_addr("sip:bob@h;tag=3") == ("", "sip:bob@h")
    empty = parse_message("")
    assert empty.method == "" and caller_from(empty) == ("", "") and called_of(empty) == ""
    broken = parse_message("INVITE sip:1@h SIP/2.0\r\nno colon here\r\n: empty name\r\nVia: garbage\r\n\r\nbody")
    assert broken.headers == (("Via", "garbage"),) and broken.body == "body" and via_transport(broken) == ""


@pytest.mark.parametrize(("ctype", "body", "want"), [
    ("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", ("5", 160)),
    ("Application/DTMF-Relay; charset=x", "Signal= #\nDuration=100", ("#", 100)),
    ("application/dtmf-relay", "Signal=11\r\nDuration=x", ("#", 0)),
    ("application/dtmf-relay", "Signal=10", ("*", 0)),
    ("application/dtmf-relay", "Duration=100", None),
    ("application/dtmf-relay", "Signal=Z", None),
    ("application/dtmf", "7", ("7", 0)),
    ("application/dtmf", "\r\nA\r\n", ("A", 0)),
    ("application/dtmf", "77", None),
    ("text/plain", "Signal=5", None),
])
def test_dtmf_info_bodies(ctype: str, body: str, want: tuple[str, int] | None) -> None:
    assert parse_dtmf_info(ctype, body) == want
