"""``gatewayd lambda-host HANDLER --port N``: serve a Python handler behind the Lambda Invoke API."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType
from typing import Any

from gatewayd.invokers.inprocess import HandlerSpecError, parse_handler_spec

EX_USAGE = 64
EX_CONFIG = 78


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "lambda-host", help="serve a Python handler behind the Lambda Invoke API (like sam local start-lambda)",
        description="Serve package.module:function on POST /2015-03-31/functions/NAME/invocations, for boto3's "
                    "lambda client (endpoint_url) or an http:// handler target. Runs until SIGINT/SIGTERM.")
    p.add_argument("handler", metavar="HANDLER", help="package.module:function (python: prefix optional)")
    p.add_argument("--port", type=int, required=True, help="TCP port (0: any free port; the URL is printed)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--timeout", type=float, default=20.0, help="handler timeout in seconds (default 20)")
    p.add_argument("--function-name", help="answer only for this function name (default: any name)")
    p.add_argument("--env", type=_env_pair, action="append", default=[], metavar="KEY=VALUE",
                   help="environment variable for the handler (repeatable)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gatewayd.invokers.lambda_host import LambdaHost

    try:
        parse_handler_spec(args.handler)
    except HandlerSpecError as exc:
        sys.stderr.write(f"gatewayd lambda-host: {exc}\n")
        return EX_USAGE
    try:
        host = LambdaHost(args.handler, host=args.host, port=args.port, timeout=args.timeout,
                          function_name=args.function_name, environment=dict(args.env))
    except (OSError, HandlerSpecError) as exc:
        sys.stderr.write(f"gatewayd lambda-host: {exc}\n")
        return EX_USAGE
    try:
        host.load()
    except Exception as exc:
        sys.stderr.write(f"gatewayd lambda-host: cannot load {args.handler}: {type(exc).__name__}: {exc}\n")
        host.close()
        return EX_CONFIG
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    host.start()
    name = args.function_name or "NAME"
    sys.stdout.write(f"lambda-host: serving {args.handler} on {host.endpoint_url} "
                     f"(POST /2015-03-31/functions/{name}/invocations)\n")
    sys.stdout.flush()
    stop.wait()
    host.close()
    return 0
