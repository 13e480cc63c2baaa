"""``gatewayd run --config FILE``: the daemon (what the systemd unit starts)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from gatewayd.config import EX_CONFIG, ConfigError, load_config
from gatewayd.logs import setup_logging

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("run", help="run the daemon")
    p.add_argument("--config", "-c", default="/etc/gatewayd/gatewayd.yaml", help="configuration file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        for p in e.problems:
            sys.stderr.write(f"{p}\n")
        return EX_CONFIG
    level = "debug" if args.verbose >= 2 else cfg.log_level
    logs = setup_logging(level)
    from gatewayd.daemon import Daemon

    try:
        return asyncio.run(Daemon(cfg, Path(args.config)).run())
    except Exception:
        log.exception("gatewayd stopped on an error")
        return 1
    finally:
        logs.stop()
