"""``gatewayd bench NAME``: benchmarks discovered in ``gatewayd.bench``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from typing import Any

from gatewayd import bench


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("bench", help="run a benchmark; exits non-zero when a bound is missed")
    bsub = p.add_subparsers(dest="bench", metavar="NAME", required=True)
    for mod in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        importlib.import_module(f"{bench.__name__}.{mod.name}").register(bsub)
