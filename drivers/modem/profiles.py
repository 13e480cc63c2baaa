"""Chipset profiles: what differs between voice modems (HARDWARE.md §0.1, §1.2, §1.8).

A profile is chosen from the ``ATI0`` / ``ATI3`` / ``AT+FMM?`` answers, or forced by configuration
(vgetty's ATI table famously sends Conexant sticks to its Rockwell driver; a forced profile is the
escape hatch for a chip this table gets wrong).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    # Logical codec names in order of preference (see drivers.modem.codec), chosen by name from +VSM=?
    codec_preference: tuple[str, ...]
    # Used only when +VSM=? gives nothing usable: (id, name as the chip spells it, sample format name)
    fallback_vsm: tuple[int, str, int]
    vsm_extra: str = ""  # appended to "AT+VSM=<id>,8000" (Conexant wants ",0,0")
    vsd_sds: int = 128  # +VSD first argument: 128 nominal; Conexant accepts only 0
    cid_spaces: bool = True  # "NMBR = 123" (True) or "NMBR=123" (USR5637); the parser takes both
    rx_abort_reply: str = "ok"  # reply to DLE !: "ok", or "dle-etx-ok" (USR sends DLE ETX first)
    supports_ifc: bool = True  # AT+IFC=2,2 (many USB Conexant sticks answer ERROR)
    ste: int | None = None  # Conexant AT-STE bits: 1 line-in-use, 2 extension pick-up, 4 remote hang-up
    # +VCID=1 is re-sent after every reset on every chip; on these it is also read back (AT+VCID?) and
    # sent once more if it did not stick (some Conexant parts drop it after ATZ even after &W)
    verify_vcid: bool = False
    pcm8_signed: bool = False  # 8-bit linear without "SIGNED"/"UNSIGNED" in its name
    tx_lead_ms: int = 300  # audio kept queued in the modem during +VTX
    exit_triple_dle: bool = False  # leave VTX/VRX with DLE DLE DLE ETX / DLE DLE DLE ! at once (Zoom 3095)


USR5637 = Profile(
    name="usr5637",
    description="U.S. Robotics USR5637 (ATI0 5601)",
    codec_preference=("ULAW", "ALAW", "LINEAR16", "LINEAR8"),
    fallback_vsm=(128, "8-BIT LINEAR", 8),
    vsd_sds=128,
    cid_spaces=False,
    rx_abort_reply="dle-etx-ok",
    supports_ifc=True,
    tx_lead_ms=300,
)

CX93010 = Profile(
    name="cx93010",
    description="Conexant CX93010 family: Zoom 3095, Trendnet TFM-561U, Dell RD02-D400, 0572:1329 (ATI0 56000)",
    codec_preference=("ULAW", "ALAW", "LINEAR16", "LINEAR8"),
    fallback_vsm=(1, "UNSIGNED PCM", 8),
    vsm_extra=",0,0",
    vsd_sds=0,
    cid_spaces=True,
    rx_abort_reply="ok",
    supports_ifc=False,
    ste=7,
    verify_vcid=True,
    tx_lead_ms=200,
)

INTEL = Profile(
    name="intel",
    description="Intel MD566x / 536EP (8-bit linear is two's complement; A-law is the default)",
    codec_preference=("ULAW", "ALAW", "LINEAR16", "LINEAR8"),
    fallback_vsm=(128, "8-BIT LINEAR", 8),
    pcm8_signed=True,
    tx_lead_ms=300,
)

V253 = Profile(
    name="v253",
    description="Generic ITU-T V.253 voice modem",
    codec_preference=("ULAW", "ALAW", "LINEAR16", "LINEAR8"),
    fallback_vsm=(1, "UNSIGNED PCM", 8),
    tx_lead_ms=300,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (USR5637, CX93010, INTEL, V253)}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown modem profile {name!r} (known: {', '.join(sorted(PROFILES))})") from None


def detect_profile(ati0: Sequence[str], ati3: Sequence[str], fmm: Sequence[str]) -> Profile:
    """Pick a profile from the identification answers (each a list of info lines)."""
    i0 = {line.strip() for line in ati0}
    text = " ".join([*ati0, *ati3, *fmm]).upper()
    if "5601" in i0 or "U.S. ROBOTICS" in text or "USROBOTICS" in text or "USR5637" in text:
        return USR5637
    if "INTEL" in text or "536EP" in text or "MD566" in text:
        return INTEL
    if "56000" in i0 or "CX93" in text or "CONEXANT" in text or "ZOOM" in text:
        return CX93010
    return V253
