"""SIP trunk driver: :class:`SipLine` implements :class:`drivers.line.Line` on pjsua2.

One SipLine is one trunk (:class:`~drivers.sip.config.SipTrunkConfig`): its transports (UDP and/or TCP on
``bind_address:port``) and one pjsua2 account, registered with digest auth or used as an IP-authenticated
peer. All trunks of a process share the :class:`~drivers.sip.endpoint.SipEndpoint` and its thread; every
pjsua2 call below runs on that thread (commands from other threads are queued to it). Events reach the
sink on that thread too.

Inbound: an INVITE is routed to the trunk whose listening port it was addressed to; a source address
outside the trunk's ACL gets 403 and produces no event. Otherwise the caller gets 180 Ringing and the
engine an :class:`IncomingCall`; :meth:`SipLine.answer` sends 200 OK and attaches the FramePort,
:meth:`SipLine.hangup` rejects (480 or the given code) or sends BYE.

Outbound (:meth:`SipLine.dial`, CallAndBridge / NEW_OUTBOUND_CALL): Ringing, then Answered or CallFailed.

Each answered leg has its own :class:`~drivers.sip.port.LegPort` in pjmedia's conference bridge,
connected to the call's audio in both directions, clocked by pjmedia every 20 ms. The tx audio the
FramePort returns for pts N is sent on the next tick (20 ms later).

Digits: RFC 4733 events and SIP INFO (``application/dtmf-relay`` and ``application/dtmf``, answered with
200) become one :class:`DigitReceived` per key press. ``start_pts`` is the leg's receive time when the
first event packet arrived; the same key press reaches the in-band detector through pjmedia's jitter
buffer, so its in-band start is typically 0-150 ms later: the media pipeline drops an in-band digit that
starts within that window after an out-of-band one. ``end_pts`` is ``start_pts`` + the reported duration.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import pjsua2 as pj

from drivers.line import (
    Answered,
    CallFailed,
    DigitReceived,
    DigitSource,
    EventSink,
    FramePort,
    IncomingCall,
    LineError,
    LineEvent,
    LineStatus,
    RemoteHangup,
    Ringing,
    deliver,
)
from drivers.sip.config import SipTrunkConfig
from drivers.sip.endpoint import SipEndpoint
from drivers.sip.message import (
    called_of,
    caller_from,
    parse_dtmf_info,
    parse_message,
    passed_headers,
    uri_host_port,
    uri_param,
    via_transport,
)
from drivers.sip.port import LegMedia, LegPort
from media.frame import SAMPLE_RATE

log = logging.getLogger(__name__)

_TRANSPORT_TYPES = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP}
_REAP_DELAY_S = 0.2  # keep a disconnected leg's port alive for a few clock ticks before freeing it
FINISHED_KEEP = 256  # finished legs whose counters SipLine.leg_stats still returns
_SAMPLES_PER_MS = SAMPLE_RATE // 1000


@dataclass
class LegStats:
    """Counters of one leg (read from any thread; written by pjsua2 / the media clock)."""

    frames_rx: int
    frames_tx: int
    bad_frames: int
    port_errors: int
    rtp_packets: int
    rtp_lost: int
    rtp_discarded: int
    jb_discarded: int = 0  # frames the jitter buffer threw away (too full / drift)
    jb_lost: int = 0  # frames it never got (concealed)
    jb_empty: int = 0  # reads from an empty jitter buffer (concealed or silence)


class _Leg:
    def __init__(self, leg_id: str, inbound: bool) -> None:
        self.leg_id = leg_id
        self.inbound = inbound
        self.call: _Call | None = None
        self.port: FramePort | None = None
        self.media: LegMedia | None = None
        self.mport: LegPort | None = None
        self.connected = False
        self.confirmed = False
        self.ended = False
        self.local_hangup = False  # we sent BYE/CANCEL/reject: no RemoteHangup/CallFailed for it
        self.reported = False  # a terminal event was already sent (rtp-timeout, dial timeout)
        self.rings = 0
        self.deadline: float | None = None  # outbound: give up ringing at this time
        self.rtp_pkts = 0
        self.rtp_lost = 0
        self.rtp_discarded = 0
        self.jb = (0, 0, 0)  # jitter buffer discard, lost, empty
        self.audio_idx = -1  # index of the call's audio stream (its stats), -1 before media is up
        self.stat_errors = 0  # stream stats that could not be read (logged once per leg)
        self.rtp_seen_at = 0.0
        self.rfc4733 = False
        self.last_dtmf: tuple[str, int] | None = None  # (digit, timestamp) of the last RFC 4733 event
        self.reap_at: float | None = None
        self.stats_final: LegStats | None = None


class _Call(pj.Call):  # type: ignore[misc]
    """A leg's pjsua2 Call.

    pjsua2's C++ ``Call`` keeps the pjsua call slot (call id) it was given for its whole life, and its
    destructor unregisters that slot and hangs up whatever call is active in it. pjsua hands a freed slot to
    the next call at once (round-robin over ``PJSUA_MAX_CALLS``, 4 with the PyPI wheel), so a Call must be
    deleted while its own call is still in the slot: in the DISCONNECTED callback (see
    :meth:`SipLine._retire`), never later.
    """

    def __init__(self, line: SipLine, leg: _Leg, acc: Any, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(acc, call_id)
        self.line = line
        self.leg: _Leg | None = leg

    def owns_slot(self) -> bool:
        """This object is still the one pjsua reports events of its call slot to."""
        cid = self.getId()
        if cid == pj.PJSUA_INVALID_ID:
            return False
        other = pj.Call.lookup(cid)
        return other is not None and int(other.this) == int(self.this)

    def onCallState(self, prm: Any) -> None:
        if self.leg is not None:
            self.line._on_call_state(self.leg)

    def onCallMediaState(self, prm: Any) -> None:
        if self.leg is not None:
            self.line._on_media_state(self.leg)

    def onDtmfEvent(self, prm: Any) -> None:
        if self.leg is not None:
            self.line._on_dtmf_event(self.leg, prm)

    def onCallTsxState(self, prm: Any) -> None:
        if self.leg is not None:
            self.line._on_tsx_state(self.leg, prm)


class _Account(pj.Account):  # type: ignore[misc]
    def __init__(self, line: SipLine) -> None:
        super().__init__()
        self.line = line

    def onIncomingCall(self, prm: Any) -> None:
        self.line._endpoint_incoming(self, prm)

    def onRegState(self, prm: Any) -> None:
        self.line._on_reg_state(prm)


#: Lines started in this process, for routing INVITEs between trunks (pjsua2 thread only).
_LINES: list[SipLine] = []


class SipLine:
    """A SIP trunk behind the :class:`~drivers.line.Line` interface."""

    kind = "sip"

    def __init__(self, config: SipTrunkConfig, finished_keep: int = FINISHED_KEEP) -> None:
        self.config = config
        self.name = config.name
        self._sink: EventSink | None = None
        self._ep: SipEndpoint | None = None
        self._acc: _Account | None = None
        self._transports: dict[str, tuple[int, int]] = {}  # "udp" -> (transport id, bound port)
        self._legs: dict[str, _Leg] = {}
        self._graveyard: list[_Leg] = []
        self._registered = False
        self._started = False
        self._ids = itertools.count(1)
        self.rejected_acl = 0  # INVITEs refused with 403 (source not allowed)
        #: counters of the last ``finished_keep`` legs that ended (oldest dropped first); every ended leg is
        #: summed into ``finished_totals`` and counted in ``finished_legs``
        self.finished_keep = max(1, finished_keep)
        self.finished_stats: OrderedDict[str, LegStats] = OrderedDict()
        self.finished_totals = LegStats(0, 0, 0, 0, 0, 0, 0)
        self.finished_legs = 0
        self.lost_slots = 0  # legs whose pjsua call slot was taken from them (should stay 0)

    # ================================================================== Line API (any thread)
    def start(self, sink: EventSink) -> None:
        if self._started:
            raise LineError(f"sip line {self.name!r} is already started")
        self._sink = sink
        ep = SipEndpoint.acquire()
        self._ep = ep
        try:
            ep.call(self._start)
        except BaseException:
            ep.call(lambda: self._stop(ep))
            ep.release()
            self._ep = None
            raise
        self._started = True

    def stop(self) -> None:
        ep = self._ep
        if ep is None:
            return
        self._ep = None
        self._started = False
        try:
            ep.call(lambda: self._stop(ep), timeout=30)
        finally:
            ep.release()

    def answer(self, leg_id: str, port: FramePort) -> None:
        self._submit(lambda: self._answer(leg_id, port))

    def hangup(self, leg_id: str, sip_code: int = 0) -> None:
        self._submit(lambda: self._hangup(leg_id, sip_code))

    def send_digits(self, leg_id: str, digits: str, tone_ms: int = 250, gap_ms: int = 100) -> bool:
        leg = self._legs.get(leg_id)
        if leg is None or not leg.rfc4733:
            return False
        self._submit(lambda: self._send_digits(leg_id, digits, tone_ms))
        return True

    def dial(self, leg_id: str, to: str, caller_id: str, headers: Mapping[str, str], port: FramePort,
             timeout_s: float) -> None:
        if self._ep is None:
            raise LineError(f"sip line {self.name!r} is not started")
        if leg_id in self._legs:
            raise LineError(f"leg {leg_id!r} already exists")
        uri = self.target_uri(to)
        hdrs = dict(headers)
        self._submit(lambda: self._dial(leg_id, uri, caller_id, hdrs, port, timeout_s))

    # ================================================================== extras for tools and tests
    def local_port(self, transport: str = "udp") -> int:
        """The port a transport is bound to (useful with ``port: 0``)."""
        try:
            return self._transports[transport][1]
        except KeyError:
            raise LineError(f"sip line {self.name!r} has no {transport} transport") from None

    def local_uri(self, user: str = "", transport: str = "") -> str:
        t = transport or self.config.transports[0]
        suffix = ";transport=tcp" if t == "tcp" else ""
        u = f"{user}@" if user else ""
        return f"sip:{u}{self.config.bind_address}:{self.local_port(t)}{suffix}"

    def target_uri(self, to: str) -> str:
        """A dial target as a SIP URI: full URIs pass through; a number goes to the registrar's domain."""
        if to.lower().startswith(("sip:", "sips:", "tel:")):
            return to
        if self.config.registrar:
            host, port = uri_host_port(self.config.registrar)
            hp = f"{host}:{port}" if port else host
            return f"sip:{to}@{hp}"
        raise LineError(f"sip line {self.name!r}: cannot dial {to!r} without a registrar; give a SIP URI")

    def leg_stats(self, leg_id: str) -> LegStats | None:
        """Counters of a leg: live, or one of the last ``finished_keep`` that ended (else None)."""
        done = self.finished_stats.get(leg_id)
        if done is not None:
            return done
        leg = self._legs.get(leg_id)
        if leg is None or leg.media is None:
            return None
        m = leg.media
        return LegStats(m.frames_rx, m.frames_tx, m.bad_frames, m.errors, leg.rtp_pkts, leg.rtp_lost,
                        leg.rtp_discarded, *leg.jb)

    @property
    def max_calls(self) -> int:
        """Concurrent calls the process-wide pjsua2 endpoint accepts (0 before ``start``); the PyPI wheel is
        built with PJSUA_MAX_CALLS = 4, further INVITEs get 486 from pjsua."""
        return self._ep.max_calls if self._ep is not None else 0

    @property
    def registered(self) -> bool:
        return self._registered

    @property
    def active_legs(self) -> int:
        return sum(1 for leg in self._legs.values() if not leg.ended)

    # ================================================================== pjsua2 thread
    def _submit(self, fn: Callable[[], None]) -> None:
        ep = self._ep
        if ep is None:
            raise LineError(f"sip line {self.name!r} is not started")
        ep.submit(fn)

    def _emit(self, event: LineEvent) -> None:
        deliver(self._sink, event, self.name)

    def _start(self) -> None:
        assert self._ep is not None
        ep = self._ep.ep
        cfg = self.config
        _LINES.append(self)
        self._ep.set_codecs(cfg.codecs)
        for t in cfg.transports:
            tc = pj.TransportConfig()
            tc.boundAddress = cfg.bind_address
            tc.port = cfg.port
            try:
                tid = ep.transportCreate(_TRANSPORT_TYPES[t], tc)
            except pj.Error as e:
                raise LineError(f"sip line {self.name!r}: cannot bind {t} {cfg.bind_address}:{cfg.port}: "
                                f"{e.info()}") from None
            port = int(ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])
            self._transports[t] = (tid, port)
        acfg = pj.AccountConfig()
        first = cfg.transports[0]
        if cfg.registration:
            acfg.idUri = f"sip:{cfg.username}@{cfg.account_domain}"
            acfg.regConfig.registrarUri = cfg.registrar
            acfg.regConfig.timeoutSec = cfg.register_expires_s
            acfg.regConfig.retryIntervalSec = 30
            acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", cfg.realm, cfg.username, 0, cfg.password))
        else:
            acfg.idUri = self.local_uri(cfg.local_user, first)
            acfg.regConfig.registrarUri = ""
        acfg.sipConfig.transportId = self._transports[first][0]
        mt = acfg.mediaConfig.transportConfig
        mt.boundAddress = cfg.rtp_address
        mt.publicAddress = cfg.rtp_address
        mt.port = cfg.rtp_port
        mt.portRange = cfg.rtp_port_range
        acfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_DISABLED
        acfg.mediaConfig.lockCodecEnabled = False  # no re-INVITE after a multi-codec answer
        acfg.natConfig.iceEnabled = False
        acfg.natConfig.sdpNatRewriteUse = False
        acfg.natConfig.viaRewriteUse = False
        acfg.natConfig.contactRewriteUse = False
        acfg.callConfig.timerUse = pj.PJSUA_SIP_TIMER_OPTIONAL
        acc = _Account(self)
        acc.create(acfg, True)
        self._acc = acc
        self._ep.add_ticker(self._tick)
        if not cfg.registration:
            self._emit(LineStatus(self.name, "", "up", f"listening on {self.local_uri()}"))
        log.info("%s: SIP trunk on %s", self.name,
                 ", ".join(f"{t} {cfg.bind_address}:{p}" for t, (_, p) in self._transports.items()))

    def _stop(self, ep: SipEndpoint) -> None:
        for leg in list(self._legs.values()):
            if not leg.ended and leg.call is not None:
                leg.local_hangup = True
                try:
                    op = pj.CallOpParam()
                    op.statusCode = 503 if (leg.inbound and not leg.confirmed) else 200
                    leg.call.hangup(op)
                except pj.Error:
                    pass
        deadline = time.monotonic() + 3.0
        while any(not leg.ended for leg in self._legs.values()) and time.monotonic() < deadline:
            ep.ep.libHandleEvents(10)
        for leg in list(self._legs.values()):
            self._release_leg(leg)
            self._free(leg)  # break the Call <-> leg cycle: no Call may outlive libDestroy
        self._legs.clear()
        for leg in self._graveyard:
            self._free(leg)
        self._graveyard.clear()
        if self._acc is not None:
            with contextlib.suppress(pj.Error):
                self._acc.shutdown()
            self._acc = None
        for tid, _ in self._transports.values():
            with contextlib.suppress(pj.Error):
                ep.ep.transportClose(tid)
        ep.remove_ticker(self._tick)
        self._transports.clear()
        if self in _LINES:
            _LINES.remove(self)
        self._sink = None

    # ------------------------------------------------------------------ inbound
    def _endpoint_incoming(self, acc: _Account, prm: Any) -> None:
        """An INVITE reached ``acc`` (pjsua2 picks accounts by To/Request-URI): pick the trunk, check the ACL."""
        text = prm.rdata.wholeMsg
        src = prm.rdata.srcAddress
        msg = parse_message(text)
        line = _route(msg) or self
        line._incoming(acc, prm.callId, msg, src)

    def _incoming(self, acc: _Account, call_id: int, msg: Any, src: str) -> None:
        leg = _Leg(uuid.uuid4().hex, inbound=True)
        call = _Call(self, leg, acc, call_id)
        leg.call = call
        op = pj.CallOpParam()
        if not self.config.allows(src):
            self.rejected_acl += 1
            log.warning("%s: INVITE from %s refused (403): not in the trunk's allowed peers", self.name, src)
            leg.local_hangup = True
            leg.reported = True
            op.statusCode = 403
            op.reason = "Forbidden"
            self._legs[leg.leg_id] = leg
            with contextlib.suppress(pj.Error):
                call.hangup(op)
            return
        self._legs[leg.leg_id] = leg
        caller, caller_name = caller_from(msg)
        event = IncomingCall(self.name, leg.leg_id, caller=caller, called=called_of(msg),
                             caller_name=caller_name, headers=passed_headers(msg), remote=src)
        try:
            op.statusCode = 180
            call.answer(op)
        except pj.Error as e:
            log.warning("%s: could not send 180 to %s: %s", self.name, src, e.info())
        if not leg.ended:
            self._emit(event)

    def _answer(self, leg_id: str, port: FramePort) -> None:
        leg = self._legs.get(leg_id)
        call = self._call_of(leg)
        if leg is None or call is None:
            log.info("%s: answer for unknown or ended leg %s", self.name, leg_id)
            return
        leg.port = port
        op = pj.CallOpParam()
        op.statusCode = 200
        try:
            call.answer(op)
        except pj.Error as e:
            leg.reported = True
            self._emit(CallFailed(self.name, leg_id, sip_code=500, reason=f"answer failed: {e.info()}"))
            self._hangup(leg_id, 500)

    def _hangup(self, leg_id: str, sip_code: int) -> None:
        leg = self._legs.get(leg_id)
        call = self._call_of(leg)
        if leg is None or call is None:
            return
        leg.local_hangup = True
        op = pj.CallOpParam()
        if leg.inbound and not leg.confirmed:
            op.statusCode = sip_code if sip_code >= 300 else 480
        try:
            call.hangup(op)
        except pj.Error as e:
            log.info("%s: hangup of %s: %s", self.name, leg_id, e.info())

    # ------------------------------------------------------------------ outbound
    def _dial(self, leg_id: str, uri: str, caller_id: str, headers: dict[str, str], port: FramePort,
              timeout_s: float) -> None:
        if self._acc is None:
            return
        leg = _Leg(leg_id, inbound=False)
        leg.port = port
        leg.deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
        call = _Call(self, leg, self._acc)
        leg.call = call
        self._legs[leg_id] = leg
        op = pj.CallOpParam(True)
        for name, value in headers.items():
            h = pj.SipHeader()
            h.hName = name
            h.hValue = value
            op.txOption.headers.append(h)
        if caller_id:
            op.txOption.localUri = self._from_uri(caller_id)
        try:
            call.makeCall(uri, op)
        except pj.Error as e:
            leg.ended = True
            leg.reported = True
            self._emit(CallFailed(self.name, leg_id, sip_code=_status_of(e), reason=e.info()))
            self._retire(leg)

    def _from_uri(self, caller_id: str) -> str:
        if caller_id.lower().startswith(("sip:", "sips:", "<", '"')):
            return caller_id
        cfg = self.config
        host = cfg.account_domain if cfg.registration else cfg.bind_address
        if cfg.registration:
            return f"<sip:{caller_id}@{host}>"
        return f"<sip:{caller_id}@{host}:{self.local_port(cfg.transports[0])}>"

    def _send_digits(self, leg_id: str, digits: str, tone_ms: int) -> None:
        leg = self._legs.get(leg_id)
        call = self._call_of(leg)
        if leg is None or call is None:
            return
        prm = pj.CallSendDtmfParam()
        prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
        prm.digits = digits
        prm.duration = tone_ms
        try:
            call.sendDtmf(prm)
        except pj.Error as e:
            log.warning("%s: sending digits on %s failed: %s", self.name, leg_id, e.info())

    # ------------------------------------------------------------------ call callbacks
    def _on_call_state(self, leg: _Leg) -> None:
        call = leg.call
        if call is None:
            return
        ci = call.getInfo()
        state = ci.state
        if state == pj.PJSIP_INV_STATE_EARLY and not leg.inbound:
            if ci.lastStatusCode in (180, 183):
                leg.rings += 1
                if leg.rings == 1:
                    self._emit(Ringing(self.name, leg.leg_id, count=leg.rings))
        elif state == pj.PJSIP_INV_STATE_CONFIRMED:
            leg.confirmed = True
            self._connect_media(leg)
            if not leg.inbound:
                self._emit(Answered(self.name, leg.leg_id))
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            leg.ended = True
            code = int(ci.lastStatusCode)
            reason = str(ci.lastReason)
            if not leg.local_hangup and not leg.reported:
                leg.reported = True
                if leg.confirmed:
                    self._emit(RemoteHangup(self.name, leg.leg_id, sip_code=0, reason="bye"))
                elif leg.inbound:
                    self._emit(RemoteHangup(self.name, leg.leg_id, sip_code=code, reason="cancel"))
                else:
                    self._emit(CallFailed(self.name, leg.leg_id, sip_code=code, reason=reason))
            self._retire(leg)

    def _on_media_state(self, leg: _Leg) -> None:
        if leg.confirmed:
            self._connect_media(leg)

    def _connect_media(self, leg: _Leg) -> None:
        call = leg.call
        if call is None or leg.ended or leg.port is None:
            return
        ci = call.getInfo()
        for mi in ci.media:
            if mi.type != pj.PJMEDIA_TYPE_AUDIO or mi.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            aud = call.getAudioMedia(mi.index)
            leg.audio_idx = int(mi.index)
            if leg.mport is None:
                leg.media = LegMedia(leg.port)
                leg.mport = LegPort(leg.media, f"leg-{next(self._ids)}")
                leg.rtp_seen_at = time.monotonic()
            # every time: a re-INVITE may have given the call a new stream (the old one left the bridge with
            # its connections, the new one may even have its slot number); connecting twice is a no-op
            aud.startTransmit(leg.mport)
            leg.mport.startTransmit(aud)
            leg.connected = True
            try:
                si = call.getStreamInfo(mi.index)
                leg.rfc4733 = int(si.audTxEventPt) >= 0
            except pj.Error:
                leg.rfc4733 = False
            return

    def _on_dtmf_event(self, leg: _Leg, prm: Any) -> None:
        digit = str(prm.digit).upper()
        pts = leg.media.pts if leg.media is not None else 0
        if prm.method == pj.PJSUA_DTMF_METHOD_RFC2833:
            key = (digit, int(prm.timestamp))
            if leg.last_dtmf == key:
                return  # update or end of a key press already reported
            leg.last_dtmf = key
            end = pts + int(prm.duration) * _SAMPLES_PER_MS if int(prm.duration) > 0 else None
            self._emit(DigitReceived(self.name, leg.leg_id, digit, DigitSource.RFC4733, start_pts=pts,
                                     end_pts=end if end and end > pts else None))
        else:
            dur = int(prm.duration)
            self._emit(DigitReceived(self.name, leg.leg_id, digit, DigitSource.SIP_INFO, start_pts=pts,
                                     end_pts=pts + dur * _SAMPLES_PER_MS if dur > 0 else None))

    def _on_tsx_state(self, leg: _Leg, prm: Any) -> None:
        """SIP INFO with ``application/dtmf`` (pjsua handles ``application/dtmf-relay`` itself)."""
        e = prm.e
        if e.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        tsx = e.body.tsxState.tsx
        if tsx.role != pj.PJSIP_ROLE_UAS or tsx.method != "INFO" or tsx.state != pj.PJSIP_TSX_STATE_TRYING:
            return
        try:
            text = e.body.tsxState.src.rdata.wholeMsg
        except Exception:
            return
        msg = parse_message(text)
        ctype = msg.get("content-type").split(";", 1)[0].strip().lower()
        if ctype != "application/dtmf":
            return
        got = parse_dtmf_info(ctype, msg.body)
        if got is None:
            return
        # pjsua answers only dtmf-relay INFOs; answer this one before pjsip's dialog sends 500
        if not _respond_200(e.body.tsxState.src.rdata, tsx):
            log.warning("%s: could not answer INFO application/dtmf on %s", self.name, leg.leg_id)
        pts = leg.media.pts if leg.media is not None else 0
        self._emit(DigitReceived(self.name, leg.leg_id, got[0], DigitSource.SIP_INFO, start_pts=pts))

    def _on_reg_state(self, prm: Any) -> None:
        code = int(prm.code)
        ok = 200 <= code < 300 and int(prm.expiration) > 0
        if ok != self._registered or not ok:
            self._registered = ok
            self._emit(LineStatus(self.name, "", "up" if ok else "down",
                                  f"registration {code} {prm.reason}"))

    # ------------------------------------------------------------------ housekeeping
    def _tick(self, now: float) -> None:
        timeout = self.config.rtp_timeout_s
        for leg in list(self._legs.values()):
            if leg.ended:
                continue
            call = self._call_of(leg)
            if call is None:
                continue
            if leg.deadline is not None and not leg.confirmed and now >= leg.deadline:
                leg.deadline = None
                leg.reported = True
                leg.local_hangup = True
                self._emit(CallFailed(self.name, leg.leg_id, sip_code=480, reason="no answer"))
                with contextlib.suppress(pj.Error):
                    call.hangup(pj.CallOpParam())
                continue
            if leg.connected and leg.mport is not None:
                pkts = self._poll_stream(leg, call)  # None: no stream now (hold, re-INVITE, BYE sent)
                if pkts is not None and pkts != leg.rtp_pkts:
                    leg.rtp_pkts = pkts
                    leg.rtp_seen_at = now
                elif timeout > 0 and now - leg.rtp_seen_at >= timeout and not leg.local_hangup:
                    log.info("%s: no RTP on %s for %.1f s: hanging up", self.name, leg.leg_id, timeout)
                    leg.reported = True
                    leg.local_hangup = True
                    self._emit(RemoteHangup(self.name, leg.leg_id, sip_code=0, reason="rtp-timeout"))
                    with contextlib.suppress(pj.Error):
                        call.hangup(pj.CallOpParam())
            if leg.media is not None and leg.media.last_error is not None:
                err, leg.media.last_error = leg.media.last_error, None
                log.error("%s: frame port of %s failed (%d so far): %r", self.name, leg.leg_id,
                          leg.media.errors, err)
        for leg in [g for g in self._graveyard if g.reap_at is not None and now >= g.reap_at]:
            self._graveyard.remove(leg)
            self._free(leg)

    def _poll_stream(self, leg: _Leg, call: _Call) -> int | None:
        """Read the RTP and jitter-buffer counters of the leg's audio stream into ``leg``; the RTP packets
        received so far, or None when the call has no audio stream now (pjsua2 would log an error)."""
        if leg.audio_idx < 0 or not call.hasMedia():
            return None
        try:
            st = call.getStreamStat(leg.audio_idx)
        except pj.Error as e:
            leg.stat_errors += 1
            if leg.stat_errors == 1:
                log.debug("%s: no stream stats for %s: %s", self.name, leg.leg_id, e.info())
            return None
        rx = st.rtcp.rxStat
        leg.rtp_lost = int(rx.loss)
        leg.rtp_discarded = int(rx.discard)
        leg.jb = (int(st.jbuf.discard), int(st.jbuf.lost), int(st.jbuf.empty))
        return int(rx.pkt)

    def _call_of(self, leg: _Leg | None) -> _Call | None:
        """The leg's Call, if the leg is live and the Call still owns its pjsua call slot.

        A live leg whose Call lost the slot (it cannot happen while Calls are deleted on DISCONNECTED; this
        guards against acting on someone else's call) is reported as ended and retired."""
        if leg is None or leg.ended or leg.call is None:
            return None
        call = leg.call
        if call.owns_slot():
            return call
        self.lost_slots += 1
        log.error("%s: leg %s lost its pjsua call slot %d: ended", self.name, leg.leg_id, call.getId())
        leg.ended = True
        if not leg.reported:
            leg.reported = True
            if leg.confirmed or leg.inbound:
                self._emit(RemoteHangup(self.name, leg.leg_id, sip_code=0, reason="lost"))
            else:
                self._emit(CallFailed(self.name, leg.leg_id, sip_code=500, reason="call slot lost"))
        # the Call's destructor would unregister and hang up the slot's new owner: never delete it
        call.thisown = False
        call.leg = None
        leg.call = None
        self._retire(leg)
        return None

    def _retire(self, leg: _Leg) -> None:
        """A leg ended: drop its Call now (see :class:`_Call`), disconnect its media now, free its port a few
        clock ticks later (pjmedia's clock thread may be in its callbacks)."""
        self._release_leg(leg)
        self._drop_call(leg)
        self._legs.pop(leg.leg_id, None)
        leg.reap_at = time.monotonic() + _REAP_DELAY_S
        self._graveyard.append(leg)

    def _release_leg(self, leg: _Leg) -> None:
        if leg.stats_final is None and leg.media is not None:
            m = leg.media
            m.close()  # pjmedia's clock ticks the port until it is freed: nothing more reaches the FramePort
            # the stream is gone once the call is disconnected: these are the last figures the tick read
            leg.stats_final = LegStats(m.frames_rx, m.frames_tx, m.bad_frames, m.errors, leg.rtp_pkts,
                                       leg.rtp_lost, leg.rtp_discarded, *leg.jb)
            self._finished(leg.leg_id, leg.stats_final)
        leg.connected = False  # pjsua removed the call's stream from the bridge: nothing to stop

    def _finished(self, leg_id: str, st: LegStats) -> None:
        """Keep the counters of the last ``finished_keep`` legs; add every leg's to the totals."""
        self.finished_stats[leg_id] = st
        while len(self.finished_stats) > self.finished_keep:
            self.finished_stats.popitem(last=False)
        t = self.finished_totals
        self.finished_totals = LegStats(*(getattr(t, f.name) + getattr(st, f.name) for f in fields(LegStats)))
        self.finished_legs += 1

    @staticmethod
    def _drop_call(leg: _Leg) -> None:
        """Break the Call <-> leg cycle; the Call (its C++ object) is deleted as the last reference goes."""
        if leg.call is not None:
            leg.call.leg = None
            leg.call = None

    def _free(self, leg: _Leg) -> None:
        leg.mport = None
        self._drop_call(leg)


def _respond_200(rdata: Any, tsx: Any) -> bool:
    """Send 200 OK on a UAS transaction that pjsua2 does not answer itself (pjsip C API through ctypes;
    called on the pjsua2 thread inside the transaction's state callback)."""
    try:
        lib = _pjlib()
        tdata = ctypes.c_void_p()
        st = lib.pjsip_endpt_create_response(lib.pjsua_get_pjsip_endpt(), ctypes.c_void_p(int(rdata.pjRxData)), 200,
                                             None, ctypes.byref(tdata))
        if st != 0:
            return False
        return int(lib.pjsip_tsx_send_msg(ctypes.c_void_p(int(tsx.pjTransaction)), tdata)) == 0
    except (OSError, AttributeError, TypeError, ValueError):
        return False


_PJLIB: ctypes.CDLL | None = None


def _pjlib() -> ctypes.CDLL:
    global _PJLIB
    if _PJLIB is None:
        lib = ctypes.CDLL(pj._pjsua2.__file__)
        lib.pjsua_get_pjsip_endpt.restype = ctypes.c_void_p
        lib.pjsip_endpt_create_response.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                                    ctypes.POINTER(ctypes.c_void_p)]
        lib.pjsip_tsx_send_msg.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        _PJLIB = lib
    return _PJLIB


def _status_of(e: Any) -> int:
    """A SIP-ish code for a pjsua2 error raised while placing a call."""
    status = int(getattr(e, "status", 0))
    if 300 <= status < 700:
        return status
    return 500 if status else 400


def _route(msg: Any) -> SipLine | None:
    """The started trunk an INVITE was addressed to, by Request-URI port and top-Via transport."""
    if len(_LINES) <= 1:
        return None
    _, port = uri_host_port(msg.request_uri)
    transport = uri_param(msg.request_uri, "transport").lower() or via_transport(msg) or "udp"
    want = port or 5060
    for line in _LINES:
        entry = line._transports.get(transport)
        if entry is not None and entry[1] == want:
            return line
    return None
