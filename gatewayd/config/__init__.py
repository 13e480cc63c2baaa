"""Configuration: YAML → typed, frozen dataclasses, validated with ``file:line:col`` errors.

``load_config(path)`` is what the daemon and ``gatewayd check-config`` call: it parses, checks the
cross-references (rules → applications and lines, unique names) and resolves paths.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path

from gatewayd.config.loader import ConfigError, Marks, Problem, load, load_file
from gatewayd.config.model import (
    ApplicationConfig,
    BucketConfig,
    Config,
    FxoLineConfig,
    LineConfig,
    LocalBucketConfig,
    MediaConfig,
    MetricsConfig,
    ModemLineConfig,
    RuleConfig,
    RuleTarget,
    S3BucketConfig,
    SipLineConfig,
)

EX_CONFIG = 78  # sysexits.h: configuration error

__all__ = [
    "EX_CONFIG", "ApplicationConfig", "BucketConfig", "Config", "ConfigError", "FxoLineConfig", "LineConfig",
    "LocalBucketConfig", "MediaConfig", "MetricsConfig", "ModemLineConfig", "Problem", "RuleConfig",
    "RuleTarget", "S3BucketConfig", "SipLineConfig", "application_id", "load_config", "load_config_text",
    "rule_id",
]

_NS = uuid.UUID("6f1c2a9e-3b7d-4c55-9a0e-2f8d1b3c4e5a")


def application_id(app: ApplicationConfig) -> str:
    return app.id or str(uuid.uuid5(_NS, "sma:" + app.name))


def rule_id(rule: RuleConfig) -> str:
    return rule.id or str(uuid.uuid5(_NS, "rule:" + rule.name))


def _cross_check(cfg: Config, marks: Marks) -> list[Problem]:
    problems: list[Problem] = []

    def unique(items: tuple[object, ...], what: str) -> set[str]:
        seen: set[str] = set()
        for it in items:
            name = getattr(it, "name", "")
            if name in seen:
                problems.append(marks.problem(it, "name", f"duplicate {what} name {name!r}"))
            seen.add(name)
        return seen

    lines = unique(cfg.lines, "line")
    apps = unique(cfg.applications, "application")
    unique(cfg.rules, "rule")
    unique(cfg.buckets, "bucket")
    for r in cfg.rules:
        for t in r.target_applications:
            if t.application not in apps:
                problems.append(marks.problem(t, "application", f"unknown application {t.application!r}"
                                              + (f"; known: {', '.join(sorted(apps))}" if apps else "")))
        if r.trigger_type == "Line" and r.trigger_value != "*" and r.trigger_value not in lines:
            problems.append(marks.problem(r, "trigger_value", f"unknown line {r.trigger_value!r}"))
    ports: dict[tuple[str, int], str] = {}
    for ln in cfg.lines:
        if isinstance(ln, SipLineConfig) and ln.port:
            key = (ln.bind_address, ln.port)
            if key in ports:
                problems.append(marks.problem(ln, "port",
                                              f"{ln.bind_address}:{ln.port} is already used by {ports[key]!r}"))
            ports[key] = ln.name
    return problems


def _resolve(cfg: Config, base: Path) -> Config:
    state = cfg.state_dir
    if state is None:
        env = os.environ.get("STATE_DIRECTORY")
        state = Path(env.split(":")[0]) if env else base / "var"
    elif not state.is_absolute():
        state = base / state
    def bucket_root(b: LocalBucketConfig) -> Path:
        if b.root is None:
            return state / "buckets"
        return b.root if b.root.is_absolute() else base / b.root

    buckets = tuple(dataclasses.replace(b, root=bucket_root(b)) if isinstance(b, LocalBucketConfig) else b
                    for b in cfg.buckets)
    return dataclasses.replace(cfg, state_dir=state, buckets=buckets)


def load_config_text(text: str, file: str = "<config>", base: Path | None = None) -> Config:
    cfg, marks = load(text, Config, file)
    problems = _cross_check(cfg, marks)
    if problems:
        raise ConfigError(problems)
    return _resolve(cfg, base or Path.cwd())


def load_config(path: str | Path) -> Config:
    p = Path(path)
    cfg, marks = load_file(p, Config)
    problems = _cross_check(cfg, marks)
    if problems:
        raise ConfigError(problems)
    return _resolve(cfg, p.resolve().parent)
