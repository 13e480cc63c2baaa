"""``gatewayd check-config FILE``: validate a configuration without starting anything."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gatewayd.config import EX_CONFIG, ConfigError, load_config
from gatewayd.config.schema import config_schema


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "check-config", help="validate a config file; errors as file:line:col, exit 78 when invalid")
    p.add_argument("file")
    p.set_defaults(func=run)
    s: argparse.ArgumentParser = sub.add_parser("config-schema", help="print the config's JSON Schema")
    s.add_argument("--example", action="store_true", help="print the documented example configuration instead")
    s.set_defaults(func=run_schema)


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as e:
        for p in e.problems:
            sys.stderr.write(f"{p}\n")
        return EX_CONFIG
    sys.stdout.write(f"{args.file}: OK ({len(cfg.lines)} lines, {len(cfg.applications)} applications, "
                     f"{len(cfg.rules)} rules, {len(cfg.buckets)} buckets)\n")
    return 0


def run_schema(args: argparse.Namespace) -> int:
    if args.example:
        from gatewayd.config.example import example_yaml

        sys.stdout.write(example_yaml())
        return 0
    sys.stdout.write(json.dumps(config_schema(), indent=2) + "\n")
    return 0
