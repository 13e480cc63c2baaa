"""Handler invokers: call a SIP media application's handler with a Chime event.

``make_invoker(target)`` picks the adapter from the handler string of the application's config:

* ``python:package.module:function`` — in-process, kept warm (:class:`~gatewayd.invokers.inprocess.PythonInvoker`);
* ``http(s)://host:port/...`` — the Lambda Invoke API (:class:`~gatewayd.invokers.lambda_http.HttpInvoker`);
* ``arn:aws:lambda:...`` or a plain function name — boto3 (:class:`~gatewayd.invokers.aws_lambda.Boto3Invoker`).

All share :class:`~gatewayd.invokers.base.Invoker`: ``submit(payload, timeout)`` → Future of
``InvokeOk | InvokeError``, ``invoke_async`` for asyncio, ``invoke`` blocking. With the engine::

    effect = session.next_effect()                     # InvokeHandler
    result = await invoker.invoke_async(effect.payload, effect.timeout_s)
    session.handle(as_event(effect.invocation_id, result), loop.time())
"""

from __future__ import annotations

from collections.abc import Mapping

from gatewayd.invokers.base import InvocationError, InvokeError, InvokeOk, Invoker, InvokeResult, as_event


def make_invoker(target: str, *, environment: Mapping[str, str] | None = None, region: str | None = None,
                 account_id: str = "000000000000", endpoint_url: str | None = None, workers: int = 4) -> Invoker:
    """The invoker for a handler string; ValueError when it is none of the three forms.

    ``environment`` applies to ``python:`` handlers only; ``region`` / ``endpoint_url`` to Lambda ones
    (``region`` also names the region in a python handler's context ARN).
    """
    if target.startswith("python:"):
        from gatewayd.invokers.inprocess import PythonInvoker

        return PythonInvoker(target, environment=environment, region=region or "us-east-1", account_id=account_id,
                             workers=workers)
    if target.startswith(("http://", "https://")):
        from gatewayd.invokers.lambda_http import HttpInvoker

        return HttpInvoker(target, workers=workers)
    from gatewayd.invokers.aws_lambda import Boto3Invoker, is_lambda_target

    if is_lambda_target(target):
        return Boto3Invoker(target, region=region, endpoint_url=endpoint_url, workers=workers)
    raise ValueError(f"{target!r} is not python:package.module:function, http(s)://..., arn:aws:lambda:... "
                     "or a function name")


__all__ = ["InvocationError", "InvokeError", "InvokeOk", "InvokeResult", "Invoker", "as_event", "make_invoker"]
