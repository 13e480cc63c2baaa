"""Parsing and validation of one action: raw handler JSON → a normalised action or an ActionError.

Lax typing everywhere (SPEC §2): integers may arrive as numeric strings (``"30"``, ``" 3000 "``) or
integral floats (``30.0``), booleans as strings in any case (``"True"``). Parameters are echoed in the
normalised type (``"DurationInSeconds": "10"`` comes back as ``10``) with defaults filled in and the
resolved ``CallId``. Unknown parameters are echoed as given and otherwise ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gatewayd.sma import actions as A
from gatewayd.sma.keys import bucket_problem, prefix_problem

TAGS = ("LEG-A", "LEG-B")
TERMINATOR_CHARS = frozenset("0123456789*#")
SEND_DIGIT_CHARS = frozenset("0123456789*#ABCD,")
_INT_RE = re.compile(r"[+-]?\d+")
_NUM_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
MAX_SPEAK_TEXT = 1000
MAX_SEND_DIGITS = 50
SIP_HEADERS_MAX = 2048


# ------------------------------------------------------------------------------------------ lax values
def lax_int(value: Any) -> int | None:
    """An integer from an int, an integral float, or a numeric string; None otherwise (bools too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str):
        s = value.strip()
        if _INT_RE.fullmatch(s):
            return int(s)
        if _NUM_RE.fullmatch(s):
            f = float(s)
            return int(f) if math.isfinite(f) and f.is_integer() else None
    return None


def lax_number(value: Any) -> int | float | None:
    """A finite number (int when integral) from a number or numeric string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    f: float
    if isinstance(value, float):
        f = value
    elif isinstance(value, str) and _NUM_RE.fullmatch(value.strip()):
        f = float(value.strip())
    else:
        return None
    if not math.isfinite(f):
        return None
    return int(f) if f.is_integer() else f


def lax_bool(value: Any) -> bool | None:
    """A bool from a JSON boolean or "true"/"false" in any case; None otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        s = value.strip().lower()
        if s == "true":
            return True
        if s == "false":
            return False
    return None


# ------------------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class ActionError:
    """An action that failed validation (or cannot run here): becomes ACTION_FAILED."""

    type: str
    parameters: Mapping[str, Any]
    error_type: str
    error_message: str
    call_id: str | None = None  # the resolved target, when resolution got that far

    def action_data(self) -> dict[str, Any]:
        return {"Type": self.type, "Parameters": A._copy_json(self.parameters),
                "ErrorType": self.error_type, "ErrorMessage": self.error_message}


@dataclass(frozen=True)
class LegView:
    """What the parser needs to know about a leg."""

    call_id: str
    tag: str
    live: bool  # not disconnected (offered, dialing or connected)


@dataclass(frozen=True)
class ParseContext:
    legs: tuple[LegView, ...]
    default_call_id: str | None  # the leg the event that produced the list was about
    max_record_duration_s: int = 3600
    buckets: frozenset[str] | None = None


class _Fail(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def _invalid(name: str) -> _Fail:
    return _Fail(A.INVALID_ACTION_PARAMETER, A.msg_invalid(name))


def _missing(name: str) -> _Fail:
    return _Fail(A.MISSING_REQUIRED_ACTION_PARAMETER, f"{name} is a required parameter.")


# ------------------------------------------------------------------------------------------ entry point
def parse_action(raw: Mapping[str, Any], ctx: ParseContext) -> A.Action | ActionError:
    """Validate one action object (already known to have a string ``Type`` and object-or-null
    ``Parameters``). Never raises on handler data."""
    type_ = str(raw.get("Type"))
    params_raw = raw.get("Parameters")
    params: Mapping[str, Any] = params_raw if isinstance(params_raw, Mapping) else {}
    echo: dict[str, Any] = A._copy_json(params)
    if type_ in A.CLOUD_ONLY_TYPES:
        return ActionError(type_, echo, A.SYSTEM_EXCEPTION, A.msg_not_supported(type_))
    builder = _BUILDERS.get(type_)
    if builder is None:  # the response validator rejects these before they get here
        return ActionError(type_, echo, A.SYSTEM_EXCEPTION, A.msg_not_supported(type_))
    try:
        call_id, tag = _resolve_target(params, ctx)
    except _Fail as f:
        return ActionError(type_, echo, f.error_type, f.message)
    echo = {"CallId": call_id, **{k: v for k, v in echo.items() if k not in ("CallId", "ParticipantTag")}}
    if isinstance(params.get("ParticipantTag"), str) and params["ParticipantTag"]:
        echo["ParticipantTag"] = tag
    try:
        return builder(params, echo, call_id, ctx)
    except _Fail as f:
        return ActionError(type_, echo, f.error_type, f.message, call_id)


def _resolve_target(params: Mapping[str, Any], ctx: ParseContext) -> tuple[str, str]:
    """CallId wins over ParticipantTag; neither (or empty strings) means the invoked leg."""
    call_id = params.get("CallId")
    tag = params.get("ParticipantTag")
    leg: LegView | None = None
    if call_id is not None and call_id != "":
        if not isinstance(call_id, str):
            raise _Fail(A.INVALID_ACTION_PARAMETER, A.MSG_INVALID_TARGET)
        leg = next((lg for lg in ctx.legs if lg.call_id == call_id), None)
    elif tag is not None and tag != "":
        if not isinstance(tag, str) or tag not in TAGS:
            raise _Fail(A.INVALID_ACTION_PARAMETER, A.MSG_INVALID_TARGET)
        leg = next((lg for lg in ctx.legs if lg.tag == tag), None)
    elif ctx.default_call_id is not None:
        leg = next((lg for lg in ctx.legs if lg.call_id == ctx.default_call_id), None)
    if leg is None or not leg.live:
        raise _Fail(A.INVALID_ACTION_PARAMETER, A.MSG_INVALID_TARGET)
    return leg.call_id, leg.tag


# ------------------------------------------------------------------------------------------ field helpers
def _int(params: Mapping[str, Any], echo: dict[str, Any], name: str, *, default: int | None = None,
         lo: int | None = None, hi: int | None = None, required: bool = False,
         error: Callable[[], _Fail] | None = None) -> int | None:
    value = params.get(name)
    if value is None:
        if required:
            raise _missing(name)
        if default is not None:
            echo[name] = default
        return default
    n = lax_int(value)
    if n is None or (lo is not None and n < lo) or (hi is not None and n > hi):
        raise (error() if error else _invalid(name))
    echo[name] = n
    return n


def _digit_list(params: Mapping[str, Any], echo: dict[str, Any], name: str,
                default: tuple[str, ...] | None) -> tuple[str, ...]:
    value = params.get(name)
    if value is None:
        if default is None:
            raise _missing(name)
        echo[name] = list(default)
        return default
    if isinstance(value, str):  # "#" or "#*": a string of terminators
        value = list(value)
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) == 1 and v in TERMINATOR_CHARS
                                              for v in value):
        raise _invalid(name)
    out = tuple(dict.fromkeys(value))
    echo[name] = list(out)
    return out


def _bucket_ok(bucket: Any, ctx: ParseContext) -> bool:
    if bucket_problem(bucket) is not None:
        return False
    return ctx.buckets is None or bucket in ctx.buckets


def _audio_source(value: Any, ctx: ParseContext, fail: Callable[[], _Fail]) -> tuple[A.AudioSource, dict[str, Any]]:
    if not isinstance(value, Mapping):
        raise fail()
    type_ = value.get("Type", "S3")
    key = value.get("Key", value.get("key"))
    bucket = value.get("BucketName")
    if type_ != "S3" or not _bucket_ok(bucket, ctx) or not isinstance(key, str) or not key.strip():
        raise fail()
    assert isinstance(bucket, str)
    return A.AudioSource(bucket, key), {"Type": "S3", "BucketName": bucket, "Key": key}


def _invalid_audio() -> _Fail:
    return _Fail(A.INVALID_AUDIO_SOURCE, A.MSG_INVALID_AUDIO_SOURCE)


def _regex(params: Mapping[str, Any], echo: dict[str, Any], name: str, required: bool) -> str | None:
    value = params.get(name)
    if value is None:
        if required:
            raise _missing(name)
        return None
    if not isinstance(value, str) or not value:
        raise _invalid(name)
    try:
        re.compile(value)
    except (re.error, RecursionError, OverflowError) as exc:
        raise _invalid(name) from exc
    echo[name] = value
    return value


# ------------------------------------------------------------------------------------------ builders
Builder = Callable[[Mapping[str, Any], dict[str, Any], str, ParseContext], A.Action]


def _answer(p: Mapping[str, Any], echo: dict[str, Any], call_id: str, ctx: ParseContext) -> A.Action:
    return A.Answer(call_id=call_id, parameters=echo)


def _hangup(p: Mapping[str, Any], echo: dict[str, Any], call_id: str, ctx: ParseContext) -> A.Action:
    code = _int(p, echo, "SipResponseCode", default=0)
    if code not in (0, 480, 486):
        raise _invalid("SipResponseCode")
    return A.Hangup(call_id=call_id, parameters=echo, sip_code=code)


def _pause(p: Mapping[str, Any], echo: dict[str, Any], call_id: str, ctx: ParseContext) -> A.Action:
    # The Chime page spells it DurationInMilliSeconds in one place; accept both, echo as written.
    name = "DurationInMilliSeconds" if "DurationInMilliSeconds" in p and "DurationInMilliseconds" not in p \
        else "DurationInMilliseconds"
    ms = _int(p, echo, name, lo=1, required=True, error=lambda: _invalid("DurationInMilliseconds"))
    assert ms is not None
    return A.Pause(call_id=call_id, parameters=echo, duration_ms=ms)


def _play_audio(p: Mapping[str, Any], echo: dict[str, Any], call_id: str, ctx: ParseContext) -> A.Action:
    source, echo["AudioSource"] = _audio_source(p.get("AudioSource"), ctx, _invalid_audio)
    repeat = _int(p, echo, "Repeat", default=1, lo=1)
    terminators: tuple[str, ...] = ()
    if p.get("PlaybackTerminators") is not None:
        terminators = _digit_list(p, echo, "PlaybackTerminators", None)
    assert repeat is not None
    return A.PlayAudio(call_id=call_id, parameters=echo, source=source, repeat=repeat, terminators=terminators)


def _digits(p: Mapping[str, Any], echo: dict[str, Any]) -> A.DigitCollection:
    regex = _regex(p, echo, "InputDigitsRegex", required=False)
    min_digits = _int(p, echo, "MinNumberOfDigits", default=0, lo=0)
    max_digits = _int(p, echo, "MaxNumberOfDigits", default=128, lo=1)
    assert min_digits is not None and max_digits is not None
    if max_digits < min_digits:
        raise _invalid("MaxNumberOfDigits")
    terminators = _digit_list(p, echo, "TerminatorDigits", ("#",))
    repeat_ms = _int(p, echo, "RepeatDurationInMilliseconds", lo=1, required=True)
    assert repeat_ms is not None
    between = _int(p, echo, "InBetweenDigitsDurationInMilliseconds", default=repeat_ms, lo=1)
    repeat = _int(p, echo, "Repeat", default=1, lo=1)
    assert between is not None and repeat is not None
    return A.DigitCollection(regex=regex, min_digits=min_digits, max_digits=max_digits, terminators=terminators,
                             between_digits_ms=between, repeat=repeat, repeat_duration_ms=repeat_ms)


def _play_and_get(p: Mapping[str, Any], echo: dict[str, Any], call_id: str, ctx: ParseContext) -> A.Action:
    source, echo["AudioSource"] = _audio_source(p.get("AudioSource"), ctx, _invalid_audio)
    failure: A.AudioSource | None = None
    if p.get("FailureAudioSource") is not None:
        failure, echo["FailureAudioSource"] = _audio_source(p.get("FailureAudioSource"), ctx, _invalid_audio)
    digits = _digits(p, echo)
    return A.PlayAudioAndGetDigits(call_id=call_id, parameters=echo, source=source, failure_source=failure,
                                   digits=digits)


def _speech(value: Any, name: str, base: A.Speech | None) -> tuple[A.Speech, dict[str, Any]]:
    if not isinstance(value, Mapping):
        if value is None and base is None:
            raise _missing("Text")
        raise _invalid(name)
    text = value.get("Text")
    if text is None or text == "":
        raise _missing("Text")
    if not isinstance(text, str):
        raise _invalid("Text")
    if len(text) > MAX_SPEAK_TEXT:
        raise _Fail(A.MISSING_REQUIRED_ACTION_PARAMETER, "Text is limited to 1,000 characters")
    out: dict[str, Any] = {"Text": text}
    defaults = base or A.Speech(text="")
    engine = value.get("Engine", defaults.engine)
    text_type = value.get("TextType", defaults.text_type)
    voice = value.get("VoiceId", defaults.voice_id)
    language = value.get("LanguageCode", defaults.language_code)
    if not isinstance(engine, str) or engine.lower() not in ("standard", "neural"):
        raise _invalid("Engine")
    if not isinstance(text_type, str) or text_type.lower() not in ("text", "ssml"):
        raise _invalid("TextType")
    if not isinstance(voice, str) or not voice:
        raise _invalid("VoiceId")
    if language is not None and (not isinstance(language, str) or not language):
        raise _invalid("LanguageCode")
    speech = A.Speech(text=text, text_type=text_type.lower(), engine=engine.lower(), voice_id=voice,
                      language_code=language)
    out.update({"Engine": speech.engine, "TextType": speech.text_type, "VoiceId": speech.voice_id})
    if language is not None:
        out["LanguageCode"] = language
    return speech, out


def _speak(p: Mapping[str, Any], echo: dict[str, Any], call_id: str, ctx: ParseContext) -> A.Action:
    speech, fields = _speech(p, "Text", None)
    echo.update(fields)
    return A.Speak(call_id=call_id, parameters=echo, speech=speech)


def _speak_and_get(p: Mapping[str, Any], echo: dict[str, Any], call_id: str, ctx: ParseContext) -> A.Action:
    speech, echo["SpeechParameters"] = _speech(p.get("SpeechParameters"), "SpeechParameters", None)
    failure: A.Speech | None = None
    if p.get("FailureSpeechParameters") is not None:
        failure, echo["FailureSpeechParameters"] = _speech(p.get("FailureSpeechParameters"),
                                                           "FailureSpeechParameters", speech)
    digits = _digits(p, echo)
    return A.SpeakAndGetDigits(call_id=call_id, parameters=echo, speech=speech, failure_speech=failure,
                               digits=digits)


def _send_digits(p: Mapping[str, Any], echo: dict[str, Any], call_id: str, ctx: ParseContext) -> A.Action:
    digits = p.get("Digits")
    if digits is None or digits == "":
        raise _missing("Digits")
    if not isinstance(digits, str):
        raise _invalid("Digits")
    digits = digits.upper()
    if len(digits) > MAX_SEND_DIGITS or not set(digits) <= SEND_DIGIT_CHARS:
        raise _invalid("Digits")
    echo["Digits"] = digits
    tone = _int(p, echo, "ToneDurationInMilliseconds", default=250, lo=50, hi=24000,
                error=lambda: _invalid("ToneDuration"))
    assert tone is not None
    return A.SendDigits(call_id=call_id, parameters=echo, digits=digits, tone_ms=tone)


def _receive_digits(p: Mapping[str, Any], echo: dict[str, Any], call_id: str, ctx: ParseContext) -> A.Action:
    regex = _regex(p, echo, "InputDigitsRegex", required=True)
    between = _int(p, echo, "InBetweenDigitsDurationInMilliseconds", lo=1, required=True)
    flush = _int(p, echo, "FlushDigitsDurationInMilliseconds", lo=1, required=True)
    assert regex is not None and between is not None and flush is not None
    return A.ReceiveDigits(call_id=call_id, parameters=echo, regex=regex, between_digits_ms=between, flush_ms=flush)


def _prefix_ok(prefix: str) -> bool:
    return prefix_problem(prefix) is None


def _record_audio(p: Mapping[str, Any], echo: dict[str, Any], call_id: str, ctx: ParseContext) -> A.Action:
    max_ms = ctx.max_record_duration_s * 1000
    if p.get("DurationInSeconds") is not None:
        d = lax_number(p["DurationInSeconds"])
        if d is None or d <= 0:
            raise _invalid("DurationInSeconds")
        echo["DurationInSeconds"] = d
        max_ms = max(1, round(d * 1000))
    silence_ms: int | None = None
    if p.get("SilenceDurationInSeconds") is not None:
        s = lax_number(p["SilenceDurationInSeconds"])
        if s is None or not 1 <= s <= 1000:
            raise _invalid("SilenceDurationInSeconds")
        echo["SilenceDurationInSeconds"] = s
        silence_ms = round(s * 1000)
    threshold = _int(p, echo, "SilenceThreshold", default=200, lo=1, hi=1000)
    assert threshold is not None
    dest = p.get("RecordingDestination")
    if dest is None:
        raise _missing("RecordingDestination")
    if not isinstance(dest, Mapping) or dest.get("Type") != "S3" or not _bucket_ok(dest.get("BucketName"), ctx):
        raise _invalid("RecordingDestination")
    prefix = dest.get("Prefix")
    if prefix is not None and (not isinstance(prefix, str) or not _prefix_ok(prefix)):
        raise _invalid("RecordingDestination")
    bucket = str(dest["BucketName"])
    echo["RecordingDestination"] = {"Type": "S3", "BucketName": bucket}
    if prefix is not None:
        echo["RecordingDestination"]["Prefix"] = prefix
    terminators = _digit_list(p, echo, "RecordingTerminators", None)
    return A.RecordAudio(call_id=call_id, parameters=echo, bucket=bucket, prefix=prefix or None,
                         max_duration_ms=max_ms, silence_duration_ms=silence_ms, silence_threshold=threshold,
                         terminators=terminators)


def _voice_focus(p: Mapping[str, Any], echo: dict[str, Any], call_id: str, ctx: ParseContext) -> A.Action:
    if p.get("Enable") is None:
        raise _Fail(A.MISSING_REQUIRED_ACTION_PARAMETER, "Missing required action parameter.")
    enable = lax_bool(p["Enable"])
    if enable is None:
        raise _invalid("Enable")
    echo["Enable"] = enable
    return A.VoiceFocus(call_id=call_id, parameters=echo, enable=enable)


def _sip_headers_ok(headers: Mapping[str, Any]) -> bool:
    total = 0
    for k, v in headers.items():
        if not isinstance(v, str) or not k:
            return False
        low = k.lower()
        if not (low.startswith("x-") or low in ("user-to-user", "diversion")) or low.startswith("x-amzn"):
            return False
        if any(ord(c) < 0x20 for c in k + v):
            return False
        total += len(k) + len(v)
    return total <= SIP_HEADERS_MAX


def _call_and_bridge(p: Mapping[str, Any], echo: dict[str, Any], call_id: str, ctx: ParseContext) -> A.Action:
    if next((lg.tag for lg in ctx.legs if lg.call_id == call_id), None) != "LEG-A":
        raise _Fail(A.INVALID_ACTION_PARAMETER, A.MSG_INVALID_TARGET)
    caller = p.get("CallerIdNumber")
    if caller is None or caller == "":
        raise _missing("CallerIdNumber")
    if not isinstance(caller, str) or any(ord(c) < 0x20 for c in caller):
        raise _invalid("CallerIdNumber")
    timeout = _int(p, echo, "CallTimeoutSeconds", default=30, lo=1, hi=120)
    assert timeout is not None
    endpoints = p.get("Endpoints")
    if endpoints is None:
        raise _missing("Endpoints")
    if not isinstance(endpoints, list) or len(endpoints) != 1 or not isinstance(endpoints[0], Mapping):
        raise _invalid("Endpoints")
    ep = endpoints[0]
    ep_type, uri, arn = ep.get("BridgeEndpointType"), ep.get("Uri"), ep.get("Arn")
    if ep_type not in ("PSTN", "AWS") or not isinstance(uri, str) or not uri.strip():
        raise _invalid("Endpoints")
    if arn is not None and not isinstance(arn, str):
        raise _invalid("Endpoints")
    echo_ep: dict[str, Any] = {"BridgeEndpointType": ep_type, "Uri": uri}
    if arn is not None:
        echo_ep["Arn"] = arn
    echo["Endpoints"] = [echo_ep]
    ringback: A.AudioSource | None = None
    if p.get("RingbackTone") is not None:
        ringback, echo["RingbackTone"] = _audio_source(p["RingbackTone"], ctx, lambda: _invalid("RingbackTone"))
    headers = p.get("SipHeaders")
    if headers is not None and (not isinstance(headers, Mapping) or not _sip_headers_ok(headers)):
        raise _invalid("SipHeaders")
    return A.CallAndBridge(call_id=call_id, parameters=echo, caller_id=caller,
                           endpoint=A.BridgeEndpoint(str(ep_type), uri, arn), timeout_s=timeout,
                           ringback=ringback, sip_headers=dict(headers or {}))


def _start_recording(p: Mapping[str, Any], echo: dict[str, Any], call_id: str, ctx: ParseContext) -> A.Action:
    track = p.get("Track")
    if track is None:
        raise _missing("Track")
    if not isinstance(track, str) or track.upper() not in ("BOTH", "INCOMING", "OUTGOING"):
        raise _invalid("Track")
    echo["Track"] = track.upper()
    dest = p.get("Destination")
    if dest is None:
        raise _missing("Destination")
    location = dest.get("Location") if isinstance(dest, Mapping) else None
    if not isinstance(dest, Mapping) or dest.get("Type") != "S3" or not isinstance(location, str):
        raise _invalid("Destination")
    bucket, _, prefix = location.partition("/")
    if not _bucket_ok(bucket, ctx) or (prefix and not _prefix_ok(prefix)):
        raise _invalid("Destination")
    echo["Destination"] = {"Type": "S3", "Location": location}
    return A.StartCallRecording(call_id=call_id, parameters=echo, track=track.upper(), bucket=bucket,
                                prefix=prefix.strip("/") or None)


def _simple(cls: type[A.Action]) -> Builder:
    def build(p: Mapping[str, Any], echo: dict[str, Any], call_id: str, ctx: ParseContext) -> A.Action:
        return cls(call_id=call_id, parameters=echo)
    return build


_BUILDERS: dict[str, Builder] = {
    "Answer": _answer,
    "Hangup": _hangup,
    "Pause": _pause,
    "PlayAudio": _play_audio,
    "PlayAudioAndGetDigits": _play_and_get,
    "Speak": _speak,
    "SpeakAndGetDigits": _speak_and_get,
    "SendDigits": _send_digits,
    "ReceiveDigits": _receive_digits,
    "RecordAudio": _record_audio,
    "VoiceFocus": _voice_focus,
    "CallAndBridge": _call_and_bridge,
    "StartCallRecording": _start_recording,
    "StopCallRecording": _simple(A.StopCallRecording),
    "PauseCallRecording": _simple(A.PauseCallRecording),
    "ResumeCallRecording": _simple(A.ResumeCallRecording),
}
assert set(_BUILDERS) == set(A.ACTION_TYPES)
