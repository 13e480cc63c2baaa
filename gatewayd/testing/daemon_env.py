"""The environment a test or benchmark gives a ``python -m gatewayd run`` child.

What the service manager would set is left out (``NOTIFY_SOCKET``, the watchdog's ``WATCHDOG_USEC`` and
``WATCHDOG_PID``, ``RUNTIME_DIRECTORY``, ``STATE_DIRECTORY``: the caller passes its own), and this
checkout comes first on ``PYTHONPATH`` so that the child runs the code under test.
"""

from __future__ import annotations

import os
from pathlib import Path

import gatewayd

SERVICE_MANAGER_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "RUNTIME_DIRECTORY", "STATE_DIRECTORY")
ROOT = Path(gatewayd.__file__).resolve().parents[1]


def daemon_env(**extra: str) -> dict[str, str]:
    """``os.environ`` without the service manager's variables, ``PYTHONPATH`` led by this checkout, then
    ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_MANAGER_VARS}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env
