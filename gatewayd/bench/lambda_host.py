"""``gatewayd bench lambda-host``: latency of boto3 ``lambda.invoke`` against ``gatewayd lambda-host``.

Serves the bundled voicemail handler on loopback and invokes it N times with a NEW_INBOUND_CALL event
through boto3's real ``lambda`` client (dummy credentials, ``endpoint_url``), after a warm-up. Prints
p50 / p99 / max in milliseconds; exits 1 when p50 is over the bound (TCP_NODELAY missing shows up as
~44 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

EVENT = {"SchemaVersion": "1.0", "Sequence": 1, "InvocationEventType": "NEW_INBOUND_CALL",
         "CallDetails": {"TransactionId": "bench", "AwsAccountId": "000000000000", "AwsRegion": "us-east-1",
                         "SipRuleId": "rule", "SipMediaApplicationId": "sma",
                         "Participants": [{"CallId": "call-a", "ParticipantTag": "LEG-A", "To": "+15550100",
                                           "From": "+15550199", "Direction": "Inbound",
                                           "StartTimeInMilliseconds": "1700000000000"}]}}


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("lambda-host", help="boto3 invoke latency against lambda-host")
    p.add_argument("-n", type=int, default=500, help="invocations (default 500)")
    p.add_argument("--bound-p50-ms", type=float, default=20.0, help="fail when p50 is above (default 20 ms)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=run)


def measure(n: int) -> dict[str, float]:
    import boto3
    from botocore.config import Config

    from gatewayd.invokers.lambda_host import LambdaHost

    with LambdaHost("gatewayd.handlers.voicemail:handler") as host:
        client = boto3.client("lambda", endpoint_url=host.endpoint_url, region_name="us-east-1",
                              aws_access_key_id="gatewayd", aws_secret_access_key="gatewayd",
                              config=Config(retries={"total_max_attempts": 1}))
        payload = json.dumps(EVENT).encode()
        for _ in range(20):
            client.invoke(FunctionName="voicemail", Payload=payload)["Payload"].read()
        times = []
        for _ in range(n):
            t = time.perf_counter()
            resp = client.invoke(FunctionName="voicemail", Payload=payload)
            resp["Payload"].read()
            times.append((time.perf_counter() - t) * 1000)
            if resp.get("FunctionError"):
                raise RuntimeError(f"the handler failed: {resp['FunctionError']}")
    times.sort()
    return {"n": n, "p50_ms": round(statistics.median(times), 3), "p99_ms": round(times[int(0.99 * (n - 1))], 3),
            "max_ms": round(times[-1], 3), "mean_ms": round(statistics.fmean(times), 3),
            "loadavg_1m": os.getloadavg()[0]}


def run(args: argparse.Namespace) -> int:
    figures = measure(args.n)
    figures["bound_p50_ms"] = args.bound_p50_ms
    if args.json:
        sys.stdout.write(json.dumps(figures) + "\n")
    else:
        sys.stdout.write("boto3 lambda.invoke -> lambda-host: " + ", ".join(f"{k} {v}" for k, v in figures.items())
                         + "\n")
    return 0 if figures["p50_ms"] <= args.bound_p50_ms else 1
