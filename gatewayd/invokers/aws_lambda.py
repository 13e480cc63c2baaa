"""``arn:aws:lambda:...`` or a function name — AWS Lambda through boto3's ``lambda.invoke``.

boto3 is imported here, lazily, on the first invocation (on a worker thread), so a gateway without the
``aws`` extra runs every other handler kind. Credentials come from boto3's standard chain;
``endpoint_url`` points the client at any Lambda-compatible endpoint (``gatewayd lambda-host``, LocalStack).
botocore's own retries are off: the engine retries once itself. One client per distinct timeout (its
``read_timeout``), kept for the life of the invoker.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from gatewayd.invokers.base import InvocationError, InvokeError, InvokeOk, Invoker, InvokeResult, parse_json_strict
from gatewayd.invokers.lambda_http import function_error_result

if TYPE_CHECKING:
    from mypy_boto3_lambda.client import LambdaClient

log = logging.getLogger(__name__)

_ARN_RE = re.compile(r"^arn:aws[\w-]*:lambda:([a-z0-9-]+):\d{12}:function:[\w-]+(:[\w$-]+)?$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,140}$")


def is_lambda_target(target: str) -> bool:
    return bool(_ARN_RE.match(target) or _NAME_RE.match(target))


class Boto3Invoker(Invoker):
    kind = "lambda"

    def __init__(self, function: str, *, region: str | None = None, endpoint_url: str | None = None,
                 workers: int = 4) -> None:
        m = _ARN_RE.match(function)
        if not m and not _NAME_RE.match(function):
            raise ValueError(f"{function!r} is not a Lambda function ARN or name")
        super().__init__(function, workers=workers)
        self.function = function
        self.region = region or (m.group(1) if m else None)
        self.endpoint_url = endpoint_url
        self._workers = workers
        self._clients: dict[float, LambdaClient] = {}
        self._clients_lock = threading.Lock()

    def _client(self, timeout: float) -> LambdaClient:
        key = round(max(timeout, 0.1), 1)
        with self._clients_lock:
            client = self._clients.get(key)
            if client is None:
                import boto3
                from botocore.config import Config

                config = Config(read_timeout=key, connect_timeout=min(5.0, key), retries={"total_max_attempts": 1},
                                tcp_keepalive=True, max_pool_connections=self._workers)
                client = boto3.client("lambda", region_name=self.region, endpoint_url=self.endpoint_url,
                                      config=config)
                self._clients[key] = client
            return client

    def _call(self, body: bytes, deadline: float, request_id: str) -> InvokeResult:
        from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

        start = time.monotonic()
        try:
            resp: Any = self._client(deadline - start).invoke(FunctionName=self.function,
                                                              InvocationType="RequestResponse", Payload=body)
            data: bytes = resp["Payload"].read()
        except ReadTimeoutError as exc:
            return InvokeError(InvocationError.TIMEOUT, str(exc), duration_s=time.monotonic() - start,
                               request_id=request_id)
        except (ClientError, ConnectTimeoutError, BotoCoreError) as exc:
            return InvokeError(InvocationError.TRANSPORT, f"{type(exc).__name__}: {exc}",
                               duration_s=time.monotonic() - start, request_id=request_id)
        duration = time.monotonic() - start
        request_id = resp.get("ResponseMetadata", {}).get("RequestId") or request_id
        if resp.get("FunctionError"):
            return function_error_result(data, str(resp["FunctionError"]), duration, request_id)
        try:
            response = parse_json_strict(data)
        except (ValueError, UnicodeDecodeError) as exc:
            return InvokeError(InvocationError.BAD_RESPONSE, f"response is not JSON: {exc}", duration_s=duration,
                               request_id=request_id)
        return InvokeOk(response, duration, request_id)
