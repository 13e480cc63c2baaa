"""Writing SIPp scenarios: the XML of common steps."""

from __future__ import annotations


def sipp_reply(status: str, *headers: str, to_tag: bool = True, sdp: str = "", attrs: str = "") -> str:
    """A SIPp ``<send>`` answering the last request with ``SIP/2.0 <status>``: its Via, From, To (with
    our tag unless ``to_tag`` is False), Call-ID and CSeq, then ``headers``, then ``sdp`` (a body of
    one line per SDP line, or none). ``attrs``: the ``<send>`` tag's attributes (``next="end"``)."""
    lines = [f"SIP/2.0 {status}", "[last_Via:]", "[last_From:]",
             "[last_To:]" + (";tag=[pid]SIPpTag01[call_number]" if to_tag else ""), "[last_Call-ID:]",
             "[last_CSeq:]", *headers]
    if sdp:
        lines += ["Content-Type: application/sdp", "Content-Length: [len]", "",
                  *(ln.strip() for ln in sdp.strip().splitlines())]
    else:
        lines.append("Content-Length: 0")
    body = "\n".join(f"      {ln}" if ln else "" for ln in lines)
    return f"  <send{' ' + attrs if attrs else ''}>\n    <![CDATA[\n{body}\n    ]]>\n  </send>\n"
