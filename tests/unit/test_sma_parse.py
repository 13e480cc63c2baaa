"""Parameters of every action (SPEC §2 lax typing, §3 action set): accepted forms, defaults, errors."""

from __future__ import annotations

from typing import Any

import pytest

from gatewayd.sma import actions as A
from gatewayd.sma.parse import ActionError, LegView, ParseContext, lax_bool, lax_int, lax_number, parse_action

CTX = ParseContext(legs=(LegView("ca", "LEG-A", True), LegView("cb", "LEG-B", False)), default_call_id="ca")
SRC = {"Type": "S3", "BucketName": "prompts", "Key": "k.wav"}


def parse(type_: str, params: dict[str, Any] | None) -> A.Action | ActionError:
    return parse_action({"Type": type_, "Parameters": params}, CTX)


def error_of(type_: str, params: dict[str, Any] | None) -> tuple[str, str]:
    result = parse(type_, params)
    assert isinstance(result, ActionError), f"accepted: {result}"
    return result.error_type, result.error_message


@pytest.mark.parametrize(("value", "expected"), [
    (3, 3), ("3", 3), (" 30 ", 30), ("+7", 7), ("-2", -2), (30.0, 30), ("30.0", 30), ("1e3", 1000),
    (2.5, None), ("2.5", None), (True, None), (None, None), ("", None), ("abc", None), ([1], None),
    (float("nan"), None), (float("inf"), None), ("inf", None)])
def test_s2_lax_int(value: Any, expected: int | None) -> None:
    assert lax_int(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (2.5, 2.5), ("2.5", 2.5), ("10", 10), (10.0, 10), (".5", 0.5), (False, None), ("nan", None), ("1,5", None)])
def test_s2_lax_number(value: Any, expected: float | None) -> None:
    result = lax_number(value)
    assert result == expected and (expected is None or type(result) is type(expected))


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (False, False), ("True", True), ("true", True), ("TRUE", True), ("False", False),
    ("false", False), ("yes", None), (1, None), (0, None), (None, None), ("", None)])
def test_s2_lax_bool(value: Any, expected: bool | None) -> None:
    assert lax_bool(value) is expected


def test_s3_parameters_absent_or_null_are_an_empty_map() -> None:
    for raw in ({"Type": "Answer"}, {"Type": "Answer", "Parameters": None}):
        result = parse_action(raw, CTX)
        assert isinstance(result, A.Answer) and result.parameters == {"CallId": "ca"}


def test_s3_unknown_parameters_are_echoed_as_given() -> None:
    result = parse("Pause", {"DurationInMilliseconds": 10, "Note": {"x": 1}})
    assert isinstance(result, A.Pause) and result.parameters["Note"] == {"x": 1}


def test_s3_disconnected_leg_is_not_a_target() -> None:
    assert error_of("Pause", {"DurationInMilliseconds": 10, "ParticipantTag": "LEG-B"}) == \
        ("InvalidActionParameter", A.MSG_INVALID_TARGET)


# ------------------------------------------------------------------------------------------ accepted
def test_pause_both_spellings_echoed_as_written() -> None:
    p = parse("Pause", {"DurationInMilliSeconds": "3000"})
    assert isinstance(p, A.Pause) and p.duration_ms == 3000 and p.parameters["DurationInMilliSeconds"] == 3000


def test_play_audio_defaults_and_terminators() -> None:
    p = parse("PlayAudio", {"AudioSource": {"Type": "S3", "BucketName": "prompts", "key": "k.wav"},
                            "PlaybackTerminators": ["#", "*"], "Repeat": "3"})
    assert p == A.PlayAudio(call_id="ca", parameters={"CallId": "ca", "AudioSource": SRC,
                                                      "PlaybackTerminators": ["#", "*"], "Repeat": 3},
                            source=A.AudioSource("prompts", "k.wav"), repeat=3, terminators=("#", "*"))


def test_play_audio_and_get_digits_full() -> None:
    p = parse("PlayAudioAndGetDigits", {
        "InputDigitsRegex": r"^\d{2}#$", "AudioSource": SRC, "FailureAudioSource": {**SRC, "Key": "f.wav"},
        "MinNumberOfDigits": 3, "MaxNumberOfDigits": "5", "TerminatorDigits": ["#"],
        "InBetweenDigitsDurationInMilliseconds": 5000, "Repeat": 3, "RepeatDurationInMilliseconds": 10000})
    assert isinstance(p, A.PlayAudioAndGetDigits)
    assert p.failure_source == A.AudioSource("prompts", "f.wav")
    assert p.digits == A.DigitCollection(regex=r"^\d{2}#$", min_digits=3, max_digits=5, terminators=("#",),
                                         between_digits_ms=5000, repeat=3, repeat_duration_ms=10000)


def test_speak_and_get_digits_failure_speech_inherits() -> None:
    p = parse("SpeakAndGetDigits", {"SpeechParameters": {"Text": "<speak>Hi</speak>", "TextType": "ssml",
                                                         "Engine": "neural", "VoiceId": "Amy", "LanguageCode": "en-GB"},
                                    "FailureSpeechParameters": {"Text": "Again"}, "RepeatDurationInMilliseconds": 3000})
    assert isinstance(p, A.SpeakAndGetDigits)
    assert p.failure_speech == A.Speech(text="Again", text_type="ssml", engine="neural", voice_id="Amy",
                                        language_code="en-GB")
    assert p.parameters["SpeechParameters"] == {"Text": "<speak>Hi</speak>", "Engine": "neural", "TextType": "ssml",
                                                "VoiceId": "Amy", "LanguageCode": "en-GB"}


def test_speak_defaults() -> None:
    p = parse("Speak", {"Text": "Hello"})
    assert isinstance(p, A.Speak) and p.parameters == {"CallId": "ca", "Text": "Hello", "Engine": "standard",
                                                       "TextType": "text", "VoiceId": "Joanna"}


def test_call_and_bridge_aws_endpoint() -> None:
    p = parse("CallAndBridge", {"CallerIdNumber": "+1555", "Endpoints": [
        {"BridgeEndpointType": "AWS", "Uri": "5550123", "Arn": "arn:aws:chime:us-east-1:1:vc/abc"}]})
    assert isinstance(p, A.CallAndBridge) and p.endpoint == A.BridgeEndpoint("AWS", "5550123",
                                                                              "arn:aws:chime:us-east-1:1:vc/abc")


# ------------------------------------------------------------------------------------------ errors
INV = "InvalidActionParameter"
MISS = "MissingRequiredActionParameter"
ERRORS: list[tuple[str, dict[str, Any], tuple[str, str]]] = [
    ("Hangup", {"SipResponseCode": 404}, (INV, "SipResponseCode parameter value is invalid.")),
    ("Hangup", {"SipResponseCode": "busy"}, (INV, "SipResponseCode parameter value is invalid.")),
    ("Pause", {}, (MISS, "DurationInMilliseconds is a required parameter.")),
    ("Pause", {"DurationInMilliseconds": 0}, (INV, "DurationInMilliseconds parameter value is invalid.")),
    ("Pause", {"DurationInMilliseconds": 1.5}, (INV, "DurationInMilliseconds parameter value is invalid.")),
    ("PlayAudio", {}, ("InvalidAudioSource", "Audio Source parameter value is invalid.")),
    ("PlayAudio", {"AudioSource": {"Type": "S3", "BucketName": "prompts"}},
     ("InvalidAudioSource", "Audio Source parameter value is invalid.")),
    ("PlayAudio", {"AudioSource": {**SRC, "Type": "URL"}},
     ("InvalidAudioSource", "Audio Source parameter value is invalid.")),
    ("PlayAudio", {"AudioSource": SRC, "Repeat": 0}, (INV, "Repeat parameter value is invalid.")),
    ("PlayAudio", {"AudioSource": SRC, "PlaybackTerminators": ["x"]},
     (INV, "PlaybackTerminators parameter value is invalid.")),
    ("PlayAudioAndGetDigits", {"AudioSource": SRC},
     (MISS, "RepeatDurationInMilliseconds is a required parameter.")),
    ("PlayAudioAndGetDigits", {"AudioSource": SRC, "RepeatDurationInMilliseconds": 1, "InputDigitsRegex": "(["},
     (INV, "InputDigitsRegex parameter value is invalid.")),
    ("PlayAudioAndGetDigits", {"AudioSource": SRC, "RepeatDurationInMilliseconds": 1, "MinNumberOfDigits": 5,
                               "MaxNumberOfDigits": 4}, (INV, "MaxNumberOfDigits parameter value is invalid.")),
    ("PlayAudioAndGetDigits", {"AudioSource": SRC, "RepeatDurationInMilliseconds": 1,
                               "FailureAudioSource": {"Type": "S3"}},
     ("InvalidAudioSource", "Audio Source parameter value is invalid.")),
    ("Speak", {}, (MISS, "Text is a required parameter.")),
    ("Speak", {"Text": "x" * 1001}, (MISS, "Text is limited to 1,000 characters")),
    ("Speak", {"Text": "hi", "Engine": "turbo"}, (INV, "Engine parameter value is invalid.")),
    ("Speak", {"Text": "hi", "TextType": "html"}, (INV, "TextType parameter value is invalid.")),
    ("SpeakAndGetDigits", {"RepeatDurationInMilliseconds": 1}, (MISS, "Text is a required parameter.")),
    ("SpeakAndGetDigits", {"SpeechParameters": "hi", "RepeatDurationInMilliseconds": 1},
     (INV, "SpeechParameters parameter value is invalid.")),
    ("SendDigits", {}, (MISS, "Digits is a required parameter.")),
    ("SendDigits", {"Digits": "12E"}, (INV, "Digits parameter value is invalid.")),
    ("SendDigits", {"Digits": "1" * 51}, (INV, "Digits parameter value is invalid.")),
    ("SendDigits", {"Digits": "1", "ToneDurationInMilliseconds": 20000000},
     (INV, "ToneDuration parameter value is invalid.")),
    ("SendDigits", {"Digits": "1", "ToneDurationInMilliseconds": 49},
     (INV, "ToneDuration parameter value is invalid.")),
    ("ReceiveDigits", {"InBetweenDigitsDurationInMilliseconds": 1, "FlushDigitsDurationInMilliseconds": 1},
     (MISS, "InputDigitsRegex is a required parameter.")),
    ("ReceiveDigits", {"InputDigitsRegex": "1", "FlushDigitsDurationInMilliseconds": 1},
     (MISS, "InBetweenDigitsDurationInMilliseconds is a required parameter.")),
    ("ReceiveDigits", {"InputDigitsRegex": "1", "InBetweenDigitsDurationInMilliseconds": 1},
     (MISS, "FlushDigitsDurationInMilliseconds is a required parameter.")),
    ("CallAndBridge", {"Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+1"}]},
     (MISS, "CallerIdNumber is a required parameter.")),
    ("CallAndBridge", {"CallerIdNumber": "+1"}, (MISS, "Endpoints is a required parameter.")),
    ("CallAndBridge", {"CallerIdNumber": "+1", "Endpoints": []}, (INV, "Endpoints parameter value is invalid.")),
    ("CallAndBridge", {"CallerIdNumber": "+1", "Endpoints": [{"BridgeEndpointType": "SIP", "Uri": "+1"}]},
     (INV, "Endpoints parameter value is invalid.")),
    ("CallAndBridge", {"CallerIdNumber": "+1", "CallTimeoutSeconds": 121,
                       "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+1"}]},
     (INV, "CallTimeoutSeconds parameter value is invalid.")),
    ("CallAndBridge", {"CallerIdNumber": "+1", "SipHeaders": {"X-AMZN-Thing": "1"},
                       "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+1"}]},
     (INV, "SipHeaders parameter value is invalid.")),
    ("CallAndBridge", {"CallerIdNumber": "+1", "SipHeaders": {"Contact": "x"},
                       "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+1"}]},
     (INV, "SipHeaders parameter value is invalid.")),
    ("CallAndBridge", {"CallerIdNumber": "+1", "RingbackTone": {"Type": "S3"},
                       "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+1"}]},
     (INV, "RingbackTone parameter value is invalid.")),
    ("StartCallRecording", {"Destination": {"Type": "S3", "Location": "b"}}, (MISS, "Track is a required parameter.")),
    ("StartCallRecording", {"Track": "LEFT", "Destination": {"Type": "S3", "Location": "b"}},
     (INV, "Track parameter value is invalid.")),
    ("StartCallRecording", {"Track": "BOTH"}, (MISS, "Destination is a required parameter.")),
    ("StartCallRecording", {"Track": "BOTH", "Destination": {"Type": "S3", "Location": "b/../x"}},
     (INV, "Destination parameter value is invalid.")),
]


@pytest.mark.parametrize(("type_", "params", "error"), ERRORS,
                         ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(ERRORS)])
def test_action_parameter_errors(type_: str, params: dict[str, Any], error: tuple[str, str]) -> None:
    assert error_of(type_, params) == error


def test_call_and_bridge_only_from_leg_a() -> None:
    ctx = ParseContext(legs=(LegView("ca", "LEG-A", True), LegView("cb", "LEG-B", True)), default_call_id="cb")
    result = parse_action({"Type": "CallAndBridge", "Parameters": {
        "CallerIdNumber": "+1", "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+1"}]}}, ctx)
    assert isinstance(result, ActionError) and result.error_message == A.MSG_INVALID_TARGET
