"""Reading the parts of SIP messages that pjsua2 does not hand over as fields.

pjsua2 gives the whole received message as text (``SipRxData.wholeMsg``); this module pulls out what the
driver needs — From/To/Request-URI users, display names, X- headers, the transport of the top Via, and
DTMF digits carried in SIP INFO bodies. It is pure and tolerant: pjsip has already rejected messages it
cannot parse, and anything odd that is left yields empty values rather than exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# RFC 3261 compact header forms.
_COMPACT = {"f": "from", "t": "to", "v": "via", "i": "call-id", "m": "contact", "l": "content-length",
            "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding"}

#: Headers besides X-* that are passed to the engine with an incoming call.
PASSED_HEADERS = ("user-to-user", "diversion")

DTMF_DIGITS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True)
class SipMessage:
    start_line: str
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    _index: dict[str, list[str]] = field(default_factory=dict, repr=False, compare=False)

    def get(self, name: str) -> str:
        """First value of a header (compact forms understood), "" if absent."""
        values = self._index.get(_canonical(name))
        return values[0] if values else ""

    def get_all(self, name: str) -> list[str]:
        return list(self._index.get(_canonical(name), ()))

    @property
    def request_uri(self) -> str:
        parts = self.start_line.split()
        return parts[1] if len(parts) == 3 and parts[2].upper().startswith("SIP/") else ""

    @property
    def method(self) -> str:
        parts = self.start_line.split()
        return parts[0].upper() if len(parts) == 3 and parts[2].upper().startswith("SIP/") else ""


def _canonical(name: str) -> str:
    n = name.strip().lower()
    return _COMPACT.get(n, n)


def parse_message(text: str) -> SipMessage:
    """Split a SIP message into start line, headers (folded lines joined) and body."""
    head, sep, body = text.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return SipMessage("")
    start = lines[0].strip()
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            continue
        headers.append((name.strip(), value.strip()))
    index: dict[str, list[str]] = {}
    for name, value in headers:
        index.setdefault(_canonical(name), []).append(value)
    return SipMessage(start, tuple(headers), body if sep else "", index)


def name_addr(value: str) -> tuple[str, str]:
    """``"Alice" <sip:alice@h>;tag=1`` -> ("Alice", "sip:alice@h"); a bare URI loses its header params."""
    v = value.strip()
    if "<" in v and ">" in v[v.index("<"):]:
        lt = v.index("<")
        display = v[:lt].strip()
        uri = v[lt + 1:v.index(">", lt)].strip()
        if len(display) >= 2 and display[0] == display[-1] == '"':
            display = display[1:-1].replace('\\"', '"')
        return display, uri
    return "", v.split(";", 1)[0].strip()


def _uri_body(uri: str) -> tuple[str, str]:
    """(scheme, rest without scheme) of a URI."""
    u = uri.strip().strip("<>").strip()
    scheme, colon, rest = u.partition(":")
    if not colon:
        return "", u
    return scheme.lower(), rest


def uri_user(uri: str) -> str:
    """User part of ``sip:user@host`` / ``tel:+123``; "" when there is none."""
    scheme, rest = _uri_body(uri)
    if scheme == "tel":
        return rest.split(";", 1)[0]
    if scheme not in ("sip", "sips"):
        return ""
    hostpart = rest.split("?", 1)[0]
    if "@" not in hostpart:
        return ""
    return hostpart.rsplit("@", 1)[0].split(";", 1)[0].split(":", 1)[0]


def uri_host_port(uri: str) -> tuple[str, int | None]:
    """Host and port of a SIP URI (port None when absent)."""
    scheme, rest = _uri_body(uri)
    if scheme not in ("sip", "sips"):
        return "", None
    hp = rest.split(";", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    if hp.startswith("["):
        end = hp.find("]")
        host, tail = hp[1:end], hp[end + 1:]
        port_s = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_s = hp.partition(":")
    try:
        port = int(port_s) if port_s else None
    except ValueError:
        port = None
    return host, port


def uri_param(uri: str, name: str) -> str:
    """Value of a URI parameter (``;transport=tcp``), "" if absent."""
    _, rest = _uri_body(uri)
    for p in rest.split("?", 1)[0].split(";")[1:]:
        k, _, v = p.partition("=")
        if k.strip().lower() == name.lower():
            return v.strip()
    return ""


def via_transport(msg: SipMessage) -> str:
    """Transport of the top Via ("udp", "tcp", ...), "" if unreadable."""
    via = msg.get("via")
    proto = via.split(None, 1)[0] if via else ""
    parts = proto.split("/")
    return parts[2].lower() if len(parts) == 3 else ""


def passed_headers(msg: SipMessage) -> dict[str, str]:
    """X- headers plus User-to-User and Diversion, with their names as received (first value wins)."""
    out: dict[str, str] = {}
    for name, value in msg.headers:
        low = name.lower()
        if (low.startswith("x-") or low in PASSED_HEADERS) and name not in out:
            out[name] = value
    return out


def caller_from(msg: SipMessage) -> tuple[str, str]:
    """(caller, caller_name) from From, with "anonymous" for withheld identities."""
    display, uri = name_addr(msg.get("from"))
    user = uri_user(uri)
    host, _ = uri_host_port(uri)
    if user.lower() == "anonymous" or host.lower() == "anonymous.invalid" or display.lower() == "anonymous":
        return "anonymous", ""
    return user, display


def called_of(msg: SipMessage) -> str:
    """The dialled number: user of the Request-URI, else of To."""
    return uri_user(msg.request_uri) or uri_user(name_addr(msg.get("to"))[1])


# ------------------------------------------------------------------ DTMF in SIP INFO
_RELAY_CODES = {str(i): str(i) for i in range(10)} | {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C",
                                                        "15": "D"}


def _digit(token: str) -> str:
    t = token.strip().upper()
    if t in DTMF_DIGITS:
        return t
    return _RELAY_CODES.get(t, "")


def parse_dtmf_info(content_type: str, body: str) -> tuple[str, int] | None:
    """Digit and duration (ms, 0 if not given) from a SIP INFO body, or None if it carries no digit.

    ``application/dtmf-relay``: ``Signal=5\\r\\nDuration=160``; ``application/dtmf``: the digit alone.
    """
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "application/dtmf-relay":
        digit, duration = "", 0
        for line in body.replace("\r", "\n").split("\n"):
            key, eq, value = line.partition("=")
            if not eq:
                continue
            k = key.strip().lower()
            if k == "signal":
                digit = _digit(value)
            elif k == "duration":
                try:
                    duration = max(0, int(value.strip()))
                except ValueError:
                    duration = 0
        return (digit, duration) if digit else None
    if ctype == "application/dtmf":
        digit = _digit(body.strip())
        return (digit, 0) if digit else None
    return None
