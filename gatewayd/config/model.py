"""The configuration model: one YAML file, typed and frozen.

Every field's ``doc`` metadata is its documentation: it feeds the JSON Schema in ``config/``
(``gatewayd config-schema``). Relative paths (``state_dir``, a local bucket's ``path``) are resolved
against the directory of the config file. Under systemd, ``state_dir`` defaults to ``$STATE_DIRECTORY``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

#: VoiceFocus implementations (media.voicefocus.BACKENDS, named here so that the CLI and the config do not load
#: scipy to list them); learned meets issue 4's bounds and beats builtin (docs/voicefocus.md)
VoiceFocusBackend = Literal["builtin", "learned"]
VOICEFOCUS_BACKENDS: tuple[str, ...] = get_args(VoiceFocusBackend)
DEFAULT_VOICEFOCUS_BACKEND: VoiceFocusBackend = "learned"

HANDLER_RE = re.compile(r"^(python:[A-Za-z_][\w.]*:[A-Za-z_]\w*|https?://\S+|arn:aws:lambda:\S+|[A-Za-z0-9_-]{1,140})$")
# Call-progress tone plans of media.progress (ISO 3166 codes; uk for the United Kingdom).
Country = Literal["us", "uk", "at", "be", "bg", "ch", "cz", "de", "dk", "ee", "es", "fi", "fr", "gr", "hu", "it",
                  "nl", "no", "pl", "pt", "se"]


def doc(text: str, **kw: Any) -> dict[str, Any]:
    return {"doc": text, **kw}


# ------------------------------------------------------------------------------------------ lines
@dataclass(frozen=True)
class SipLineConfig:
    """A SIP trunk: registration with digest auth (``registrar``) or an IP-authenticated peer."""

    type: Literal["sip"]
    name: str = field(metadata=doc("Line name, used by routing rules (TriggerType Line) and in logs/metrics.",
                                   example="trunk"))
    bind_address: str = field(default="127.0.0.1", metadata=doc("Address SIP (and RTP) bind to."))
    port: int = field(default=5060, metadata=doc("SIP port for every transport.", min=0, max=65535))
    transports: tuple[Literal["udp", "tcp"], ...] = field(default=("udp",), metadata=doc(
        "SIP transports; the first carries outbound calls and registration."))
    media_address: str = field(default="", metadata=doc("Address RTP binds to and advertises; '': bind_address."))
    rtp_port: int = field(default=0, metadata=doc("First RTP port (0: any free port).", min=0, max=65535))
    rtp_port_range: int = field(default=0, metadata=doc("How many ports above rtp_port may be used.", min=0))
    codecs: tuple[Literal["PCMU", "PCMA"], ...] = field(default=("PCMU", "PCMA"),
                                                        metadata=doc("G.711 codecs, in order."))
    allowed_peers: tuple[str, ...] = field(default=("127.0.0.1/32",), metadata=doc(
        "Source ACL: addresses/CIDRs allowed to send INVITEs; others get 403 and never reach a handler."))
    registrar: str = field(default="", metadata=doc("Register to this SIP URI (trunk with digest auth)."))
    username: str = field(default="", metadata=doc("Digest auth user for registration."))
    password: str = field(default="", metadata=doc("Digest auth password."))
    realm: str = field(default="*", metadata=doc("Digest auth realm."))
    domain: str = field(default="", metadata=doc("Domain of the account's address of record (default: registrar's)."))
    register_expires_s: int = field(default=300, metadata=doc("Registration lifetime.", min=60))
    rtp_timeout_s: float = field(default=30.0, metadata=doc("Hang up after this long without RTP (0: never).",
                                                            min=0))
    local_user: str = field(default="gatewayd", metadata=doc("User part of this trunk's own address."))
    dtmf_inband: bool = field(default=True, metadata=doc("Also detect DTMF tones in the audio (besides RFC 4733)."))

    def check(self) -> list[tuple[str, str]]:
        from drivers.sip.config import SipConfigError

        try:
            self.trunk_config()
        except SipConfigError as e:
            msg = str(e).split(": ", 1)[-1]  # drop the driver's "sip trunk 'name'" prefix
            named = [f.name for f in fields(self)
                     if f.name in msg or f.name.replace("_", " ").rstrip("s") in msg]
            return [(max(named, key=len) if named else "name", msg)]
        return []

    def trunk_config(self) -> Any:
        """The driver's configuration (drivers.sip.config.SipTrunkConfig; pure, no pjsua2)."""
        from drivers.sip.config import SipTrunkConfig

        return SipTrunkConfig(
            name=self.name, bind_address=self.bind_address, port=self.port, transports=self.transports,
            media_address=self.media_address, rtp_port=self.rtp_port, rtp_port_range=self.rtp_port_range,
            registrar=self.registrar, username=self.username, password=self.password, realm=self.realm,
            domain=self.domain, register_expires_s=self.register_expires_s, allowed_peers=self.allowed_peers,
            codecs=self.codecs, rtp_timeout_s=self.rtp_timeout_s, local_user=self.local_user)


@dataclass(frozen=True)
class ModemLineConfig:
    type: Literal["modem"]
    name: str = field(metadata=doc("Line name.", example="modem0"))
    device: str = field(metadata=doc("Serial device (e.g. /dev/gatewayd-modem0 from the udev rule) or pyserial URL.",
                                     example="/dev/gatewayd-modem0"))
    number: str = field(default="", metadata=doc("This line's phone number (the To of inbound calls)."))
    profile: Literal["auto", "usr5637", "cx93010", "intel", "v253"] = field(
        default="auto", metadata=doc("Chipset profile; auto picks it from ATI0/ATI3/+FMM answers."))
    baudrate: int = field(default=115200, metadata=doc("Serial speed (8-bit audio needs >= 115200 on a UART)."))
    rtscts: bool = field(default=True, metadata=doc("Hardware flow control (never XON/XOFF on audio)."))
    rings_before_answer: int = field(default=2, metadata=doc("Offer the call after this many rings.", min=1, max=20))
    country: Country = field(default="us", metadata=doc("Call-progress tones to detect after a remote hang-up."))
    gci: str | None = field(default=None, metadata=doc("AT+GCI country code (T.35, e.g. B4 for the UK).",
                                                      pattern=r"[0-9A-Fa-f]{2}"))
    extra_init: tuple[str, ...] = field(default=(), metadata=doc("More AT commands after init (e.g. AT!4886=02)."))
    silence_hangup_s: float = field(default=30.0, metadata=doc(
        "Software silence supervision: this much silence on the line = remote hang-up; 0 disables.", min=0))
    modem_silence_s: float = field(default=0.0, metadata=doc(
        "The modem's own silence report (AT+VSD) = remote hang-up; 0 disables.", min=0))
    detect_tones: bool = field(default=True, metadata=doc(
        "Busy, reorder and dial tone after the far end hangs up end the call (software detector)."))
    max_call_s: float = field(default=3600.0, metadata=doc("Hard cap on call length.", min=10))
    dtmf_inband: bool = field(default=False, metadata=doc("Also detect DTMF in the audio (the modem reports digits)."))
    hangup_on_polarity: bool = field(default=True, metadata=doc(
        "A loop-current polarity reversal the modem reports (DLE L) = remote hang-up, as UK and many European "
        "exchanges signal a disconnect; reversals within 600 ms of the answer (answer supervision) are ignored. "
        "Set false where the exchange reverses polarity for other reasons during a call."))


@dataclass(frozen=True)
class FxoLineConfig:
    type: Literal["fxo"]
    name: str = field(metadata=doc("Line name.", example="fxo0"))
    control_device: str = field(metadata=doc("Serial device of the FXO board's control port (or pyserial URL).",
                                             example="/dev/ttyACM1"))
    audio_device: str = field(metadata=doc("PortAudio/ALSA device name of the USB sound card.",
                                           example="USB Audio Device"))
    number: str = field(default="", metadata=doc("This line's phone number (the To of inbound calls)."))
    audio_rate: int = field(default=8000, metadata=doc("Sound-card rate; resampled to 8 kHz if different."))
    rings_before_answer: int = field(default=2, metadata=doc("Offer the call after this many rings.", min=1, max=20))
    country: Country = field(default="us", metadata=doc("Call-progress tones and ring cadence."))
    caller_id: Literal["bell202", "v23", "dtmf", "auto", "none"] = field(default="bell202", metadata=doc(
        "Caller-ID signalling: bell202 or v23 FSK (after ring cid_after_ring; in the uk before the first ring "
        "after a line reversal), dtmf (ETSI DTMF CLIP such as A<number>C, D<code>C or A<number>#, sent before "
        "the first ring; listened for while the line is idle), auto (the country's FSK or DTMF CLIP, whichever "
        "arrives), none."))
    cid_after_ring: int = field(default=1, metadata=doc(
        "FSK caller ID after ring cycle N (2 where the exchange sends it after the second ring, as "
        "sendcalleridafter=2 in the UK); the line answers no earlier than the caller-ID window after that ring, "
        "so rings_before_answer must be at least this.", min=1, max=10))
    cpc_min_ms: int = field(default=600, metadata=doc("Loop-current drop at least this long = remote hang-up.", min=10))
    hangup_on_polarity: bool = field(default=False, metadata=doc("Polarity reversal = remote hang-up."))
    silence_hangup_s: float = field(default=30.0, metadata=doc("Treat this much silence as a remote hang-up.", min=1))
    max_call_s: float = field(default=3600.0, metadata=doc("Hard cap on call length.", min=10))
    dtmf_inband: bool = field(default=True, metadata=doc("Detect DTMF in the audio."))

    def check(self) -> list[tuple[str, str]]:
        if (self.caller_id in ("bell202", "v23", "auto") and self.country != "uk"
                and self.rings_before_answer < self.cid_after_ring):
            return [("rings_before_answer", f"{self.rings_before_answer} is before the caller ID, which follows "
                                            f"ring {self.cid_after_ring} (cid_after_ring): set it to at least "
                                            f"{self.cid_after_ring}")]
        return []


LineConfig = SipLineConfig | ModemLineConfig | FxoLineConfig


# ------------------------------------------------------------------------------------------ applications and rules
@dataclass(frozen=True)
class ApplicationConfig:
    """A SIP media application: a handler plus the ids it shows in CallDetails."""

    name: str = field(metadata=doc("Application name, referenced by rules.", example="voicemail"))
    handler: str = field(metadata=doc(
        "python:package.module:function (in-process, kept warm), http(s)://host:port (Lambda Invoke API), "
        "arn:aws:lambda:... or a function name (AWS Lambda through boto3).",
        example="python:gatewayd.handlers.voicemail:handler"))
    id: str | None = field(default=None, metadata=doc("SipMediaApplicationId; default: a UUID derived from name."))
    aws_region: str = field(default="us-east-1", metadata=doc("AwsRegion in CallDetails, and the Lambda region."))
    aws_account_id: str = field(default="000000000000", metadata=doc("AwsAccountId in CallDetails.",
                                                                     pattern=r"\d{12}"))
    endpoint_url: str | None = field(default=None, metadata=doc("Lambda endpoint for arn:/name handlers."))
    timeout_s: float = field(default=20.0, metadata=doc("Handler invocation timeout (one retry follows).",
                                                        min=0.1, max=900))
    environment: Mapping[str, str] = field(default_factory=dict, metadata=doc(
        "Environment variables for an in-process python: handler."))

    def check(self) -> list[tuple[str, str]]:
        if not HANDLER_RE.match(self.handler):
            return [("handler", f"{self.handler!r} is not python:module:function, http(s)://..., "
                                "arn:aws:lambda:... or a function name")]
        return []


@dataclass(frozen=True)
class RuleTarget:
    application: str = field(metadata=doc("Application name.", example="voicemail"))
    priority: int = field(default=1, metadata=doc("Lower runs first; the next is tried if one fails.", min=1))


@dataclass(frozen=True)
class RuleConfig:
    """A SIP rule (Chime style): which calls go to which applications."""

    name: str = field(metadata=doc("Rule name.", example="every-call"))
    trigger_type: Literal["ToPhoneNumber", "RequestUriHostname", "Line"] = field(metadata=doc(
        "ToPhoneNumber: the called number; RequestUriHostname: the SIP Request-URI host; Line: a line name.",
        example="Line"))
    trigger_value: str = field(metadata=doc("E.164 number, host name or line name; '*' matches any.",
                                            example="*"))
    target_applications: tuple[RuleTarget, ...] = field(metadata=doc("Applications in priority (fail-over) order."))
    id: str | None = field(default=None, metadata=doc("SipRuleId; default: a UUID derived from name."))
    disabled: bool = field(default=False, metadata=doc("Skip this rule."))

    def check(self) -> list[tuple[str, str]]:
        if not self.target_applications:
            return [("target_applications", "at least one application is needed")]
        return []


# ------------------------------------------------------------------------------------------ buckets
@dataclass(frozen=True)
class LocalBucketConfig:
    type: Literal["local"]
    name: str = field(metadata=doc("Bucket name as handlers use it (BucketName).", example="gatewayd-prompts"))
    root: Path | None = field(default=None, metadata=doc(
        "Directory holding the bucket as a sub-directory named after it, keys as paths below it "
        "(relative to the config file); default: <state_dir>/buckets."))


@dataclass(frozen=True)
class S3BucketConfig:
    type: Literal["s3"]
    name: str = field(metadata=doc("Bucket name as handlers use it (BucketName).", example="my-recordings"))
    endpoint_url: str | None = field(default=None, metadata=doc("S3 endpoint (SeaweedFS, MinIO...); default: AWS."))
    region: str | None = field(default=None, metadata=doc("Region; default: boto3's credential/config chain."))
    profile: str | None = field(default=None, metadata=doc("AWS shared-config profile; default: the standard chain."))
    addressing_style: Literal["auto", "path", "virtual"] = field(default="auto", metadata=doc("S3 addressing style."))


BucketConfig = LocalBucketConfig | S3BucketConfig


# ------------------------------------------------------------------------------------------ the rest
@dataclass(frozen=True)
class MediaConfig:
    voicefocus_backend: VoiceFocusBackend = field(default=DEFAULT_VOICEFOCUS_BACKEND, metadata=doc(
        "VoiceFocus implementation: learned (numpy MMSE-LSA with its gain refined by a small GRU; numpy "
        "inference, weights shipped with the package) or builtin (the MMSE-LSA suppressor alone)."))
    record_max_s: float = field(default=3600.0, metadata=doc(
        "RecordAudio length cap when DurationInSeconds is absent.", min=1))
    upload_wait_s: float = field(default=10.0, metadata=doc(
        "How long RecordAudio waits for the upload before ACTION_FAILED (the upload keeps retrying).", min=0.1))
    unknown_buckets: Literal["reject", "local", "s3"] = field(default="local", metadata=doc(
        "Buckets not listed under buckets: reject (InvalidActionParameter), a local directory, or S3 "
        "through the standard credential chain."))
    tts_command: tuple[str, ...] = field(default=("espeak-ng",), metadata=doc("Local text-to-speech for Speak."))


@dataclass(frozen=True)
class MetricsConfig:
    address: str | None = field(default="127.0.0.1:9464", metadata=doc(
        "host:port for Prometheus metrics (/metrics); null disables."))


@dataclass(frozen=True)
class Config:
    lines: tuple[LineConfig, ...] = field(default=(), metadata=doc("Lines that receive calls."))
    applications: tuple[ApplicationConfig, ...] = field(default=(), metadata=doc("SIP media applications."))
    rules: tuple[RuleConfig, ...] = field(default=(), metadata=doc("Routing rules, first match wins."))
    buckets: tuple[BucketConfig, ...] = field(default=(), metadata=doc("Buckets for prompts and recordings."))
    media: MediaConfig = field(default_factory=MediaConfig, metadata=doc("Media defaults."))
    metrics: MetricsConfig = field(default_factory=MetricsConfig, metadata=doc("Prometheus metrics."))
    state_dir: Path | None = field(default=None, metadata=doc(
        "Spool, local buckets and the status socket; default $STATE_DIRECTORY or ./var beside the config."))
    log_level: Literal["debug", "info", "warning", "error"] = field(default="info", metadata=doc("Log level."))
