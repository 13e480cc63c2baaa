"""Normalised actions: what the handler asked for, validated, defaults filled, target leg resolved.

The engine parses each action of a handler's list when its turn comes (see :mod:`gatewayd.sma.parse`)
into one of the frozen dataclasses below. Those the runtime executes arrive in a
:class:`~gatewayd.sma.effects.StartAction`; the runtime pattern-matches on the class::

    match effect.action:
        case PlayAudio(source=src, repeat=n): ...
        case RecordAudio() as rec: ...

Every action carries ``call_id`` (the resolved target leg) and ``parameters``: the Chime
``Parameters`` exactly as they are echoed in ``ActionData`` (normalised types, defaults filled, the
resolved ``CallId``). Durations are integers in milliseconds, as Chime counts them; the runtime converts
them to samples of the leg (``ms * sample_rate // 1000``).

Engine-only actions (the runtime never gets a StartAction for them): :class:`Answer` (→ AnswerLeg),
:class:`Hangup` (→ HangupLeg), :class:`CallAndBridge` (→ DialLeg, BridgeLegs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

# Error types (ActionData.ErrorType) and messages the engine produces itself.
INVALID_ACTION_PARAMETER = "InvalidActionParameter"
MISSING_REQUIRED_ACTION_PARAMETER = "MissingRequiredActionParameter"
INVALID_AUDIO_SOURCE = "InvalidAudioSource"
SYSTEM_EXCEPTION = "SystemException"
CALL_NOT_ANSWERED = "CallNotAnswered"

MSG_INVALID_TARGET = "CallId or ParticipantTag parameter for action is invalid."
MSG_INVALID_AUDIO_SOURCE = "Audio Source parameter value is invalid."
MSG_CALL_NOT_ANSWERED = "Call not answered"
MSG_SYSTEM_ERROR = "System error while executing an action."
MSG_UPLOAD_FAILED = "Error occurred while uploading recording to S3 bucket."  # for the runtime's ActionFailed


def msg_invalid(name: str) -> str:
    """``"<name> parameter value is invalid."`` — the seed's wording for a bad parameter."""
    return f"{name} parameter value is invalid."


def msg_not_supported(action_type: str) -> str:
    """The SystemException message of a Chime-cloud-only action."""
    return f"{action_type} is not supported by this gateway"


# ------------------------------------------------------------------------------------------ value types
@dataclass(frozen=True)
class AudioSource:
    """An S3-style audio object (``AudioSource``, ``FailureAudioSource``, ``RingbackTone``)."""

    bucket: str
    key: str


@dataclass(frozen=True)
class Speech:
    """Polly-style speech parameters (``Speak``, ``SpeechParameters``)."""

    text: str
    text_type: str = "text"  # "text" | "ssml"
    engine: str = "standard"  # "standard" | "neural"
    voice_id: str = "Joanna"
    language_code: str | None = None


@dataclass(frozen=True)
class DigitCollection:
    """The digit-gathering part of PlayAudioAndGetDigits / SpeakAndGetDigits.

    One attempt: play the prompt, collect until ``max_digits``, a terminator, or
    ``between_digits_ms`` without a key after the first one, or ``repeat_duration_ms`` in all. Success
    when at least ``min_digits`` digits (terminator excluded) were collected and they match ``regex``
    (Python ``re.fullmatch``-compatible as written by the handler; ``None`` = any); otherwise play the
    failure prompt and try again, ``repeat`` attempts in all, then ACTION_FAILED.
    """

    regex: str | None
    min_digits: int
    max_digits: int
    terminators: tuple[str, ...]
    between_digits_ms: int
    repeat: int
    repeat_duration_ms: int


@dataclass(frozen=True)
class BridgeEndpoint:
    """``Endpoints[0]`` of CallAndBridge: ``type`` is ``"PSTN"`` (a number) or ``"AWS"`` (``uri`` + ``arn``)."""

    type: str
    uri: str
    arn: str | None = None


# ------------------------------------------------------------------------------------------ actions
@dataclass(frozen=True, kw_only=True)
class Action:
    """Base of every normalised action. ``TYPE`` is the Chime ``Type``."""

    TYPE: ClassVar[str] = ""
    #: Interruptible by a CALL_UPDATE_REQUESTED response with actions (ACTION_INTERRUPTED).
    INTERRUPTIBLE: ClassVar[bool] = False
    #: Reports ACTION_SUCCESSFUL as soon as it finishes, even mid-list (SPEC §3 rule 4).
    REPORTS: ClassVar[bool] = False
    #: Answers an offered (ringing) inbound leg before it starts (SPEC §3 rule 8).
    ANSWERS: ClassVar[bool] = False

    call_id: str
    parameters: Mapping[str, Any] = field(hash=False, compare=True)

    def action_data(self) -> dict[str, Any]:
        """``{"Type": ..., "Parameters": ...}`` for ActionData (a fresh deep-enough copy)."""
        return {"Type": self.TYPE, "Parameters": _copy_json(self.parameters)}


@dataclass(frozen=True, kw_only=True)
class Answer(Action):
    """Explicit answer (not a documented Chime action; accepted as one). Engine-only."""

    TYPE: ClassVar[str] = "Answer"


@dataclass(frozen=True, kw_only=True)
class Hangup(Action):
    """Hang up the leg (``sip_code`` 0 normal clearing, 480, 486). Engine-only; reported as HANGUP."""

    TYPE: ClassVar[str] = "Hangup"
    sip_code: int


@dataclass(frozen=True, kw_only=True)
class Pause(Action):
    """Silence for ``duration_ms`` of leg time. Interruptible."""

    TYPE: ClassVar[str] = "Pause"
    INTERRUPTIBLE: ClassVar[bool] = True
    ANSWERS: ClassVar[bool] = True
    duration_ms: int


@dataclass(frozen=True, kw_only=True)
class PlayAudio(Action):
    """Play ``source`` ``repeat`` times; a key in ``terminators`` stops it. Interruptible.

    A missing or unreadable file fails with ``InvalidAudioSource`` / :data:`MSG_INVALID_AUDIO_SOURCE`.
    """

    TYPE: ClassVar[str] = "PlayAudio"
    INTERRUPTIBLE: ClassVar[bool] = True
    ANSWERS: ClassVar[bool] = True
    source: AudioSource
    repeat: int = 1
    terminators: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PlayAudioAndGetDigits(Action):
    """Play ``source`` and gather digits; success result ``{"ReceivedDigits": "..."}``."""

    TYPE: ClassVar[str] = "PlayAudioAndGetDigits"
    REPORTS: ClassVar[bool] = True
    ANSWERS: ClassVar[bool] = True
    source: AudioSource
    failure_source: AudioSource | None
    digits: DigitCollection


@dataclass(frozen=True, kw_only=True)
class Speak(Action):
    """Speak ``speech`` (local TTS in place of Polly)."""

    TYPE: ClassVar[str] = "Speak"
    ANSWERS: ClassVar[bool] = True
    speech: Speech


@dataclass(frozen=True, kw_only=True)
class SpeakAndGetDigits(Action):
    """Speak and gather digits; success result ``{"ReceivedDigits": "..."}``."""

    TYPE: ClassVar[str] = "SpeakAndGetDigits"
    REPORTS: ClassVar[bool] = True
    ANSWERS: ClassVar[bool] = True
    speech: Speech
    failure_speech: Speech | None
    digits: DigitCollection


@dataclass(frozen=True, kw_only=True)
class SendDigits(Action):
    """Send ``digits`` (0-9 * # A-D; ``,`` = 500 ms pause), each tone ``tone_ms`` long."""

    TYPE: ClassVar[str] = "SendDigits"
    ANSWERS: ClassVar[bool] = True
    digits: str
    tone_ms: int = 250


@dataclass(frozen=True, kw_only=True)
class ReceiveDigits(Action):
    """Arm background digit collection on the leg (replaces an earlier ReceiveDigits on that leg).

    The engine counts it as done at once; the runtime keeps collecting until a StopAction for it and
    reports each match as :class:`~gatewayd.sma.events.DigitsReceived` (the engine sends
    DIGITS_RECEIVED). Digits gathered are flushed ``flush_ms`` after the first one, or matched once
    ``between_digits_ms`` passes without a key.
    """

    TYPE: ClassVar[str] = "ReceiveDigits"
    ANSWERS: ClassVar[bool] = True
    regex: str
    between_digits_ms: int
    flush_ms: int


@dataclass(frozen=True, kw_only=True)
class RecordAudio(Action):
    """Record the audio received from the leg into ``bucket``. Interruptible; reports mid-list.

    Stops after ``max_duration_ms`` of leg audio (``DurationInSeconds``, or the configured cap when
    absent), after ``silence_duration_ms`` of consecutive silent 20 ms frames (``None``: off; a frame is
    silent when its mean absolute sample value is below ``silence_threshold``), or on a key in
    ``terminators`` (its tone cut from the end of the file). Success result::

        {"RecordingDestination": {"Type": "S3", "BucketName": bucket, "Key": key},
         "RecordingTerminatorUsed": "#"}          # only when a terminator stopped it

    with ``key`` from :meth:`object_key`. Upload failure past the configured wait: ActionFailed
    ``InvalidActionParameter`` / :data:`MSG_UPLOAD_FAILED`.
    """

    TYPE: ClassVar[str] = "RecordAudio"
    INTERRUPTIBLE: ClassVar[bool] = True
    REPORTS: ClassVar[bool] = True
    ANSWERS: ClassVar[bool] = True
    bucket: str
    prefix: str | None
    max_duration_ms: int
    silence_duration_ms: int | None
    silence_threshold: int
    terminators: tuple[str, ...]

    def object_key(self, name: str) -> str:
        """``<Prefix>/<name>`` (a trailing ``/`` on Prefix is not doubled), or ``name`` without Prefix."""
        if not self.prefix:
            return name
        return f"{self.prefix.rstrip('/')}/{name}"


@dataclass(frozen=True, kw_only=True)
class VoiceFocus(Action):
    """Noise suppression on the audio received from the leg, from the next frame on. Idempotent."""

    TYPE: ClassVar[str] = "VoiceFocus"
    enable: bool


@dataclass(frozen=True, kw_only=True)
class CallAndBridge(Action):
    """Dial ``endpoint`` as LEG-B and bridge it with LEG-A (``call_id``). Engine-only; reports mid-list."""

    TYPE: ClassVar[str] = "CallAndBridge"
    REPORTS: ClassVar[bool] = True
    caller_id: str
    endpoint: BridgeEndpoint
    timeout_s: int = 30
    ringback: AudioSource | None = None
    sip_headers: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, kw_only=True)
class StartCallRecording(Action):
    """Record the leg (``track`` BOTH = stereo, INCOMING / OUTGOING = mono) until stopped or hang-up.

    ``bucket`` and ``prefix`` come from ``Destination.Location`` (``bucket[/prefix]``). Success result:
    ``{"CallRecordingDestination": {"Type": "S3", "Location": "<bucket>/<key>"}}``.
    """

    TYPE: ClassVar[str] = "StartCallRecording"
    ANSWERS: ClassVar[bool] = True
    track: str
    bucket: str
    prefix: str | None


@dataclass(frozen=True, kw_only=True)
class StopCallRecording(Action):
    TYPE: ClassVar[str] = "StopCallRecording"


@dataclass(frozen=True, kw_only=True)
class PauseCallRecording(Action):
    TYPE: ClassVar[str] = "PauseCallRecording"


@dataclass(frozen=True, kw_only=True)
class ResumeCallRecording(Action):
    TYPE: ClassVar[str] = "ResumeCallRecording"


#: Actions the runtime executes (it gets a StartAction for them and reports back).
RuntimeAction = (Pause | PlayAudio | PlayAudioAndGetDigits | Speak | SpeakAndGetDigits | SendDigits
                 | ReceiveDigits | RecordAudio | VoiceFocus | StartCallRecording | StopCallRecording
                 | PauseCallRecording | ResumeCallRecording)

ACTION_TYPES: dict[str, type[Action]] = {
    cls.TYPE: cls
    for cls in (Answer, Hangup, Pause, PlayAudio, PlayAudioAndGetDigits, Speak, SpeakAndGetDigits, SendDigits,
                ReceiveDigits, RecordAudio, VoiceFocus, CallAndBridge, StartCallRecording, StopCallRecording,
                PauseCallRecording, ResumeCallRecording)
}

#: Chime actions that need the Chime cloud: ACTION_FAILED SystemException "<Type> is not supported by this gateway".
CLOUD_ONLY_TYPES = frozenset({"JoinChimeMeeting", "ModifyChimeMeetingAttendees", "StartBotConversation"})


def _copy_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _copy_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy_json(v) for v in value]
    return value
