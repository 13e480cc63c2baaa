"""``gatewayd lambda-host``: boto3's real ``lambda`` client against it, the CLI, and the voicemail handler
served by it and driven by the SMA engine through the boto3 invoker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from gatewayd.invokers import InvokeOk
from gatewayd.invokers.aws_lambda import Boto3Invoker
from gatewayd.invokers.lambda_host import LambdaHost
from gatewayd.invokers.lambda_http import HttpInvoker
from gatewayd.sma import actions as A
from gatewayd.sma import effects as E
from tests.unit.sma_transcript import A_ID, Call, of, only

ROOT = Path(__file__).resolve().parents[2]
NEW_CALL = {"SchemaVersion": "1.0", "Sequence": 1, "InvocationEventType": "NEW_INBOUND_CALL",
            "CallDetails": {"TransactionId": "t", "AwsAccountId": "0", "AwsRegion": "us-east-1",
                            "SipMediaApplicationId": "s",
                            "Participants": [{"CallId": "c1", "ParticipantTag": "LEG-A", "From": "+1555",
                                              "To": "+1666", "Direction": "Inbound",
                                              "StartTimeInMilliseconds": "1"}]}}


@pytest.fixture
def lambda_client() -> Iterator[Any]:
    with LambdaHost("gatewayd.handlers.voicemail:handler", function_name="voicemail") as host:
        yield boto3.client("lambda", endpoint_url=host.endpoint_url, region_name="us-east-1",
                           aws_access_key_id="gatewayd", aws_secret_access_key="gatewayd",
                           config=Config(retries={"total_max_attempts": 1}))


def test_boto3_lambda_client_invokes_the_voicemail_handler(lambda_client: Any) -> None:
    resp = lambda_client.invoke(FunctionName="voicemail", Payload=json.dumps(NEW_CALL).encode())
    assert resp["StatusCode"] == 200 and resp["ExecutedVersion"] == "$LATEST" and "FunctionError" not in resp
    body = json.loads(resp["Payload"].read())
    assert [a["Type"] for a in body["Actions"]] == ["PlayAudio", "PlayAudio", "RecordAudio"]
    assert body["Actions"][2]["Parameters"]["CallId"] == "c1"


def test_boto3_lambda_client_sees_a_function_error_like_lambda(lambda_client: Any) -> None:
    resp = lambda_client.invoke(FunctionName="voicemail", Payload=b'{"CallDetails": {"Participants": 5}}')
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    body = json.loads(resp["Payload"].read())
    assert body["errorType"] in ("TypeError", "KeyError", "AttributeError") and body["errorMessage"]
    assert isinstance(body["stackTrace"], list)


def test_boto3_lambda_client_errors_for_unknown_function_and_bad_payload(lambda_client: Any) -> None:
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.invoke(FunctionName="other", Payload=b"{}")
    with pytest.raises(lambda_client.exceptions.InvalidRequestContentException):
        lambda_client.invoke(FunctionName="voicemail", Payload=b"{not json")


def test_boto3_lambda_client_by_arn(lambda_client: Any) -> None:
    resp = lambda_client.invoke(FunctionName="arn:aws:lambda:us-east-1:123456789012:function:voicemail",
                                Payload=json.dumps(NEW_CALL).encode())
    assert "FunctionError" not in resp and json.loads(resp["Payload"].read())["SchemaVersion"] == "1.0"


# ------------------------------------------------------------------------------------------ the command
def _start_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "gatewayd", "lambda-host", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, line


def test_cli_serves_until_sigterm() -> None:
    proc, line = _start_cli("tests.functional.handler_fixtures:context_info", "--port", "0",
                            "--env", "FIXTURE_GREETING=from-cli", "--function-name", "fx")
    try:
        assert line.startswith("lambda-host: serving tests.functional.handler_fixtures:context_info on http://127.0.0.1:")
        url = line.split(" on ")[1].split()[0]
        with HttpInvoker(f"{url}/fx") as inv:
            result = inv.invoke({}, 10)
        assert isinstance(result, InvokeOk) and result.response["env"] == "from-cli"
        assert result.response["function_name"] == "fx"
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
    assert rc == 0


@pytest.mark.parametrize(("handler", "rc", "message"), [
    ("not-a-handler", 64, "is not package.module:function"),
    ("tests.functional.broken_module:handler", 78, "cannot import me"),
    ("tests.functional.handler_fixtures:missing", 78, "cannot load"),
])
def test_cli_refuses_bad_handlers(handler: str, rc: int, message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "gatewayd", "lambda-host", handler, "--port", "0"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == rc and message in proc.stderr and proc.stdout == ""


# ------------------------------------------------------------------------------------------ end to end
def test_voicemail_call_through_engine_boto3_and_lambda_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """NEW_INBOUND_CALL → greeting, beep, record → playback of the recording → hangup, every invocation a
    real boto3 lambda.invoke of the bundled handler behind lambda-host."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "gatewayd")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "gatewayd")
    with LambdaHost("gatewayd.handlers.voicemail:handler") as host, \
            Boto3Invoker("voicemail", endpoint_url=host.endpoint_url, region="us-east-1") as invoker:
        call = Call()
        todo: list[E.Effect] = [call.start()]
        played: list[str] = []
        while todo:  # the runtime's part: invoke the handler, play, record
            effect = todo.pop(0)
            if isinstance(effect, E.InvokeHandler):
                result = invoker.invoke(effect.payload, effect.timeout_s)
                assert isinstance(result, InvokeOk), result
                todo += call.reply(effect, result.response)
            elif isinstance(effect, E.StartAction) and isinstance(effect.action, A.PlayAudio):
                played.append(effect.action.source.key)
                todo += call.succeed(effect, dt=2)
            elif isinstance(effect, E.StartAction) and isinstance(effect.action, A.RecordAudio):
                dest = {"Type": "S3", "BucketName": effect.action.bucket, "Key": effect.action.object_key("msg-1.wav")}
                todo += call.succeed(effect, {"RecordingDestination": dest, "RecordingTerminatorUsed": "#"}, dt=10)
        assert call.session.ended and of(call.log, E.EndTransaction) == [E.EndTransaction("completed")]
        assert played == ["voicemail/greeting.wav", "voicemail/beep.wav", "voicemail/msg-1.wav"]
        assert only(call.log, E.HangupLeg) == E.HangupLeg(A_ID, 0)
        assert call.session.transaction_attributes == {"Caller": "+15550199", "RecordingBucket": "gatewayd-recordings",
                                                       "RecordingKey": "voicemail/msg-1.wav"}
        events = [e.payload["InvocationEventType"] for e in of(call.log, E.InvokeHandler)]
        assert events == ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "HANGUP"] and host.requests == 3
