"""How each SMA action the engine hands over (StartAction) is carried out on a leg.

Every executor is a coroutine on the control loop that drives media-time operations on the leg
(:mod:`gatewayd.runtime.ops`) and returns the event to report: ActionSucceeded with the Chime result
fields, or ActionFailed with ErrorType/ErrorMessage. Cancelling the task stops the media operations
and reports nothing (the engine already accounted for an interruption or cancellation).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gatewayd.runtime.ops import (
    CallRecordingOp,
    CollectOp,
    CollectSpec,
    Op,
    PauseOp,
    Playback,
    ReceiveDigitsOp,
    RecordOp,
    RecordSpec,
)
from gatewayd.runtime.services import AudioSourceError
from gatewayd.runtime.worker import Activity
from gatewayd.sma import actions as A
from gatewayd.sma.events import ActionFailed, ActionSucceeded
from gatewayd.sma.keys import CALL_RECORDINGS_PREFIX, call_recording_key
from gatewayd.store import InvalidDestination, InvalidKey, RecordingOutcome, StoreError, UnknownBucket
from media.frame import SAMPLE_RATE, Samples

if TYPE_CHECKING:
    from gatewayd.runtime.calls import Call, LegState

log = logging.getLogger(__name__)

Result = ActionSucceeded | ActionFailed

MSG_INVALID_DIGITS = "Invalid digits received."
MSG_INPUT_TIME_LIMIT = "Input time limit exceeded."
SEND_DIGITS_GAP_MS = 100  # silence between SendDigits tones (',' is a 500 ms pause)


def ms_to_samples(ms: int, rate: int = SAMPLE_RATE) -> int:
    return ms * rate // 1000


def resolver(fut: asyncio.Future[Any], activity: Activity | None = None) -> Callable[[Any], None]:
    """A callback that resolves ``fut`` from any thread (the media worker, a driver thread)."""
    loop = fut.get_loop()

    def settle(result: Any) -> None:
        try:
            if not fut.done():
                fut.set_result(result)
        finally:
            if activity is not None:
                loop.call_soon(activity.end)  # after the task this wakes has taken its next step

    def resolve(result: Any) -> None:
        if activity is not None:
            activity.begin(loop=True)
        loop.call_soon_threadsafe(settle, result)

    return resolve


async def run_op(leg: LegState, make: Callable[[Callable[[Any], None]], Op]) -> Any:
    """Start a media-time operation on the leg and wait for its result (cancellable)."""
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    op = make(resolver(fut, leg.media.worker.activity))
    leg.media.start_op(op)
    try:
        return await fut
    except asyncio.CancelledError:
        leg.media.cancel_op(op, "cancelled")
        raise


async def play(leg: LegState, samples: Samples, repeat: int = 1, terminators: str = "") -> dict[str, Any]:
    fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    pb = Playback(samples, resolver(fut, leg.media.worker.activity), repeat)
    leg.media.play(pb, terminators)
    try:
        return await fut
    except asyncio.CancelledError:
        pb.stop("cancelled")
        raise


def failed(error_type: str, message: str) -> ActionFailed:
    return ActionFailed(0, error_type, message)


async def _prompt(call: Call, source: A.AudioSource) -> Samples | ActionFailed:
    try:
        return await call.io(call.services.prompts.load(source.bucket, source.key))
    except AudioSourceError as e:
        call.log.warning("audio source s3://%s/%s: %s", source.bucket, source.key, e)
        return failed(A.INVALID_AUDIO_SOURCE, A.MSG_INVALID_AUDIO_SOURCE)


async def _speech(call: Call, sp: A.Speech) -> Samples | ActionFailed:
    try:
        return await call.io(call.services.prompts.speak(sp.text, ssml=sp.text_type == "ssml", voice_id=sp.voice_id,
                                                         language_code=sp.language_code, engine=sp.engine))
    except AudioSourceError as e:
        call.log.warning("text-to-speech failed: %s", e)
        return failed(A.SYSTEM_EXCEPTION, A.MSG_SYSTEM_ERROR)


# ------------------------------------------------------------------------------------------ actions
async def pause(call: Call, leg: LegState, a: A.Pause) -> Result:
    await run_op(leg, lambda done: PauseOp(ms_to_samples(a.duration_ms), done))
    return ActionSucceeded(0)


async def play_audio(call: Call, leg: LegState, a: A.PlayAudio) -> Result:
    samples = await _prompt(call, a.source)
    if isinstance(samples, ActionFailed):
        return samples
    await play(leg, samples, a.repeat, "".join(a.terminators))
    return ActionSucceeded(0)


async def speak(call: Call, leg: LegState, a: A.Speak) -> Result:
    samples = await _speech(call, a.speech)
    if isinstance(samples, ActionFailed):
        return samples
    await play(leg, samples)
    return ActionSucceeded(0)


async def _gather(call: Call, leg: LegState, prompt: Samples, failure: Samples | None,
                  d: A.DigitCollection) -> Result:
    """Prompt (barge-in on the first key), collect, validate; ``repeat`` attempts in all."""
    last: dict[str, Any] = {}
    for attempt in range(max(1, d.repeat)):
        spec = CollectSpec(min_digits=d.min_digits, max_digits=d.max_digits, terminators="".join(d.terminators),
                           first_digit_timeout=10**12,  # armed when the prompt has finished
                           inter_digit_timeout=ms_to_samples(d.between_digits_ms), regex=d.regex)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        op = CollectOp(spec, resolver(fut, leg.media.worker.activity))
        leg.media.start_op(op)
        try:
            playback = asyncio.ensure_future(play(leg, prompt, 1, "0123456789*#ABCD"))
            await asyncio.wait([playback, fut], return_when=asyncio.FIRST_COMPLETED)
            if not fut.done():
                leg.media.worker.submit(functools.partial(op.arm, ms_to_samples(d.repeat_duration_ms)))
            last = await fut
            if not playback.done():
                leg.media.stop_playback("digits")
        except asyncio.CancelledError:
            leg.media.cancel_op(op, "cancelled")
            leg.media.stop_playback("cancelled")
            raise
        if last["valid"] and last["reason"] != "hangup":
            return ActionSucceeded(0, {"ReceivedDigits": last["digits"]})
        if last["reason"] == "hangup":
            break
        if failure is not None and attempt + 1 < max(1, d.repeat):
            await play(leg, failure)
    if last.get("digits"):
        return failed("InvalidDigitsReceived", MSG_INVALID_DIGITS)
    return failed("InputTimeLimitExceeded", MSG_INPUT_TIME_LIMIT)


async def _prompts_then_gather(call: Call, leg: LegState,
                               load: Callable[[Call, Any], Awaitable[Samples | ActionFailed]],
                               main: Any, failure: Any, d: A.DigitCollection) -> Result:
    prompt = await load(call, main)
    if isinstance(prompt, ActionFailed):
        return prompt
    failure_audio = None if failure is None else await load(call, failure)
    if isinstance(failure_audio, ActionFailed):
        return failure_audio
    return await _gather(call, leg, prompt, failure_audio, d)


async def play_audio_and_get_digits(call: Call, leg: LegState, a: A.PlayAudioAndGetDigits) -> Result:
    return await _prompts_then_gather(call, leg, _prompt, a.source, a.failure_source, a.digits)


async def speak_and_get_digits(call: Call, leg: LegState, a: A.SpeakAndGetDigits) -> Result:
    return await _prompts_then_gather(call, leg, _speech, a.speech, a.failure_speech, a.digits)


async def send_digits(call: Call, leg: LegState, a: A.SendDigits) -> Result:
    if call.send_digits_out_of_band(leg, a.digits, a.tone_ms):
        return ActionSucceeded(0)
    gen = call.services.media.dtmf_generator
    if gen is None:
        return failed(A.SYSTEM_EXCEPTION, A.MSG_SYSTEM_ERROR)
    await play(leg, gen(a.digits, a.tone_ms, SEND_DIGITS_GAP_MS))
    return ActionSucceeded(0)


async def receive_digits(call: Call, leg: LegState, a: A.ReceiveDigits, action_id: int) -> Result:
    """Runs until cancelled; every match is reported to the engine as DigitsReceived."""
    report = call.mgr.threadsafe(call.digits_received)

    def matched(digits: str) -> None:  # media worker thread
        report(action_id, digits)

    await run_op(leg, lambda done: ReceiveDigitsOp(a.regex, ms_to_samples(a.between_digits_ms),
                                                   ms_to_samples(a.flush_ms), matched, done))
    return ActionSucceeded(0)


async def record_audio(call: Call, leg: LegState, a: A.RecordAudio) -> Result:
    store = call.services.store
    key = a.object_key(f"{uuid.uuid4()}.wav")
    try:
        rec = await call.io(asyncio.to_thread(store.open_recording, a.bucket, key,
                                              transaction_id=call.transaction_id, call_id=leg.call_id))
    except (UnknownBucket, InvalidKey) as e:
        call.log.warning("RecordAudio to s3://%s/%s refused: %s", a.bucket, key, e)
        return failed(A.INVALID_ACTION_PARAMETER, A.msg_invalid("RecordingDestination"))
    except StoreError as e:  # SpoolError, SpoolFull: the call goes on, the event says why
        call.log.error("cannot start recording: %s", e)
        return failed(A.SYSTEM_EXCEPTION, f"{A.MSG_SYSTEM_ERROR} The recording spool is unavailable: {e}")
    spec = RecordSpec(max_samples=ms_to_samples(a.max_duration_ms), terminators="".join(a.terminators),
                      silence_threshold=a.silence_threshold if a.silence_duration_ms is not None else None,
                      silence_samples=ms_to_samples(a.silence_duration_ms or 0))
    try:
        result = await run_op(leg, lambda done: RecordOp(spec, rec, done))
    except asyncio.CancelledError:
        # interrupted: the recording is still finished and uploaded (never lost), just not reported
        call.keep_task(_await_quietly(call, rec.outcome, key))
        raise
    outcome = await call.io(asyncio.wrap_future(rec.outcome))
    if not outcome.ok:
        call.log.error("recording s3://%s/%s: %s (%s)", a.bucket, key, outcome.error_message, outcome.detail)
        return failed(outcome.error_type or A.INVALID_ACTION_PARAMETER, outcome.error_message or A.MSG_UPLOAD_FAILED)
    data: dict[str, Any] = {"RecordingDestination": {"Type": "S3", "BucketName": a.bucket, "Key": key}}
    if result.get("terminator"):
        data["RecordingTerminatorUsed"] = result["terminator"]
    return ActionSucceeded(0, data)


async def _await_quietly(call: Call, outcome: concurrent.futures.Future[RecordingOutcome], key: str) -> None:
    o = await asyncio.wrap_future(outcome)
    call.log.info("interrupted recording %s: %s", key, "uploaded" if o.ok else f"still spooled ({o.detail})")


async def voice_focus(call: Call, leg: LegState, a: A.VoiceFocus) -> Result:
    if call.services.media.suppressor is None:
        return failed(A.SYSTEM_EXCEPTION, A.MSG_SYSTEM_ERROR)
    if a.enable and call.services.media.load_suppressor is not None:
        await asyncio.to_thread(call.services.media.load_suppressor)  # the media worker then only constructs it
    leg.media.set_voicefocus(a.enable)
    return ActionSucceeded(0)


# ------------------------------------------------------------------------------------------ call recording
MSG_RECORDING_ALREADY_STARTED = "Call recording is already started on this call leg."
MSG_NO_RECORDING = "No call recording is in progress on this call leg."


async def start_call_recording(call: Call, leg: LegState, a: A.StartCallRecording) -> Result:
    """Runs until StopCallRecording or the end of the leg; reports success as soon as it records."""
    if leg.call_recording is not None:
        return failed(A.INVALID_ACTION_PARAMETER, MSG_RECORDING_ALREADY_STARTED)
    store = call.services.store
    try:
        key = call_recording_key(a.prefix or CALL_RECORDINGS_PREFIX, datetime.now(UTC), call.transaction_id,
                                 leg.call_id)
        rec = await call.io(asyncio.to_thread(
            store.open_recording, a.bucket, key, transaction_id=call.transaction_id, call_id=leg.call_id,
            channels=2 if a.track == "BOTH" else 1, extra_metadata={"recording-audio-file-format": "wav"}))
    except (UnknownBucket, InvalidKey, InvalidDestination) as e:
        call.log.warning("StartCallRecording to s3://%s refused: %s", a.bucket, e)
        return failed(A.INVALID_ACTION_PARAMETER, A.msg_invalid("Destination"))
    except StoreError as e:
        call.log.error("cannot start call recording: %s", e)
        return failed(A.SYSTEM_EXCEPTION, f"{A.MSG_SYSTEM_ERROR} The recording spool is unavailable: {e}")
    fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    op = CallRecordingOp(a.track, rec, leg.media.tap_tx(), resolver(fut, leg.media.worker.activity))
    leg.call_recording = op
    leg.media.start_op(op)
    call.keep_task(_finish_call_recording(call, leg, op, fut, rec.outcome, key))
    return ActionSucceeded(0, {"CallRecordingDestination": {"Type": "S3", "Location": f"{a.bucket}/{key}"}})


async def _finish_call_recording(call: Call, leg: LegState, op: CallRecordingOp, fut: asyncio.Future[Any],
                                 outcome: concurrent.futures.Future[RecordingOutcome], key: str) -> None:
    result = await fut
    if leg.call_recording is op:
        leg.call_recording = None
    o = await asyncio.wrap_future(outcome)
    call.log.info("call recording %s stopped (%s, %.1f s): %s", key, result["reason"], result["samples"] / 8000,
                  "uploaded" if o.ok else f"still spooled, retried ({o.detail})")


async def stop_call_recording(call: Call, leg: LegState, a: A.StopCallRecording) -> Result:
    op = leg.call_recording
    if op is None:
        return failed(A.INVALID_ACTION_PARAMETER, MSG_NO_RECORDING)
    leg.call_recording = None
    leg.media.command(functools.partial(op.stop, "stopped"))
    return ActionSucceeded(0)


async def pause_call_recording(call: Call, leg: LegState, a: A.PauseCallRecording) -> Result:
    op = leg.call_recording
    if op is None:
        return failed(A.INVALID_ACTION_PARAMETER, MSG_NO_RECORDING)
    leg.media.command(op.pause)
    return ActionSucceeded(0)


async def resume_call_recording(call: Call, leg: LegState, a: A.ResumeCallRecording) -> Result:
    op = leg.call_recording
    if op is None:
        return failed(A.INVALID_ACTION_PARAMETER, MSG_NO_RECORDING)
    leg.media.command(op.resume)
    return ActionSucceeded(0)
