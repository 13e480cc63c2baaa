"""The files a package installs for systemd and udev, checked with systemd's own tools where they run
without a booted systemd (PID 1 here is not systemd):

* ``systemd-analyze verify`` on the unit (its ExecStart binary pointed at a scratch copy of the CLI);
* ``systemd-analyze security --offline=yes`` rates the unit file's exposure (≤ 2.5);
* ``systemd-sysusers --root`` / ``systemd-tmpfiles --root --create`` into a scratch root;
* the udev rules: ``udevadm verify`` needs systemd ≥ 254 (this is 252, and udevadm is not installed), so
  the rules are parsed here against udev(7)'s syntax: known keys, the right operator for match and
  assignment keys, quoted values, and what each modem rule must do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gatewayd.config import EX_CONFIG
from gatewayd.daemon import STOP_TIMEOUT_S

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
UNIT = SYSTEMD / "gatewayd.service"
MAX_EXPOSURE = 2.5


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed on this machine")
    return path


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=cwd, check=False)


def unit_settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def scratch_unit(tmp_path: Path, text: str | None = None) -> Path:
    """A copy of the unit whose /usr/bin/gatewayd is an executable in ``tmp_path`` (verify checks it exists)."""
    binary = tmp_path / "bin" / "gatewayd"
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text("#!/bin/sh\nexec python3 -m gatewayd \"$@\"\n")
    binary.chmod(0o755)
    unit = tmp_path / "units" / "gatewayd.service"
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text((text if text is not None else UNIT.read_text()).replace("/usr/bin/gatewayd", str(binary)))
    return unit


# ------------------------------------------------------------------ the unit
def test_unit_verifies(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    unit = scratch_unit(tmp_path)
    r = run(analyze, "verify", str(unit))
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    # the same check sees a mistake (so a pass above means something)
    bad = scratch_unit(tmp_path / "bad", UNIT.read_text().replace("Type=notify", "Type=notfy"))
    r = run(analyze, "verify", str(bad))
    assert "notfy" in r.stderr, r.stderr


def test_unit_matches_what_the_daemon_does() -> None:
    s = unit_settings(UNIT.read_text())
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["RestartPreventExitStatus"] == [str(EX_CONFIG)]  # a bad config is not restarted in a loop
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["KillMode"] == ["mixed"]  # SIGTERM to the main process only, which finishes the uploads
    timeout_stop = s["TimeoutStopSec"][0]
    assert timeout_stop.endswith("s") and float(timeout_stop[:-1]) > STOP_TIMEOUT_S + 5
    assert s["WatchdogSec"] and s["StateDirectory"] == ["gatewayd"]
    assert set(s["SupplementaryGroups"][0].split()) == {"dialout", "audio"}


def security_exposure(analyze: str, unit: Path) -> float:
    r = run(analyze, "security", "--offline=yes", str(unit), cwd=unit.parent)
    m = re.search(r"Overall exposure level for gatewayd\.service: (\d+(?:\.\d+)?)", r.stdout)
    assert m, r.stdout + r.stderr
    return float(m.group(1))


def test_security_exposure_at_most_2_5(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    if "--offline" not in run(analyze, "--help").stdout:
        pytest.skip("this systemd-analyze cannot rate a unit file offline (needs systemd >= 250)")
    exposure = security_exposure(analyze, scratch_unit(tmp_path))
    assert exposure <= MAX_EXPOSURE
    # without its hardening block the same unit rates far worse: the figure above is the unit's own
    soft = UNIT.read_text().split("# Hardening")[0] + "\n[Install]\nWantedBy=multi-user.target\n"
    assert security_exposure(analyze, scratch_unit(tmp_path / "soft", soft)) > exposure + 3


# ------------------------------------------------------------------ sysusers, tmpfiles
def test_sysusers_and_tmpfiles_in_a_scratch_root(tmp_path: Path) -> None:
    sysusers, tmpfiles = tool("systemd-sysusers"), tool("systemd-tmpfiles")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    # a Debian/Raspberry Pi OS system already has dialout and audio
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc" / "group").write_text("root:x:0:\ndialout:x:20:pi\naudio:x:29:pi\n")
    r = run(sysusers, f"--root={root}", str(SYSTEMD / "gatewayd.sysusers"))
    assert r.returncode == 0, r.stderr
    passwd = {ln.split(":")[0]: ln.split(":") for ln in (root / "etc" / "passwd").read_text().splitlines()}
    groups = {ln.split(":")[0]: ln.split(":") for ln in (root / "etc" / "group").read_text().splitlines()}
    user = passwd["gatewayd"]
    assert 0 < int(user[2]) < 1000  # a system user
    assert user[3] == groups["gatewayd"][2]  # its own primary group
    assert user[5] == "/var/lib/gatewayd" and user[6].endswith("nologin")
    assert groups["dialout"][2] == "20" and set(groups["dialout"][3].split(",")) == {"pi", "gatewayd"}
    assert groups["audio"][2] == "29" and set(groups["audio"][3].split(",")) == {"pi", "gatewayd"}

    r = run(tmpfiles, f"--root={root}", "--create", str(SYSTEMD / "gatewayd.tmpfiles"))
    assert r.returncode == 0, r.stderr
    st = (root / "etc" / "gatewayd").stat()
    assert oct(st.st_mode & 0o7777) == oct(0o750)
    assert st.st_uid == 0 and st.st_gid == int(groups["gatewayd"][2])
    assert os.path.isdir(root / "etc" / "gatewayd")


# ------------------------------------------------------------------ udev
MATCH_KEYS = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "NAME", "SYMLINK", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER",
              "DRIVERS", "ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "TAG", "TAGS", "TEST", "PROGRAM", "RESULT"}
ASSIGN_KEYS = {"NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "SECLABEL", "ATTR", "SYSCTL", "ENV", "TAG", "RUN",
               "LABEL", "GOTO", "IMPORT", "OPTIONS"}
KEYS_WITH_ATTR = {"ATTR", "ATTRS", "ENV", "SYSCTL", "CONST", "IMPORT"}
TOKEN = re.compile(r'\s*([A-Z_]+)(?:\{([^}]+)\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(?:,|$)')


def parse_rule(line: str) -> list[tuple[str, str | None, str, str]]:
    tokens, pos = [], 0
    while pos < len(line):
        m = TOKEN.match(line, pos)
        assert m, f"udev syntax error at column {pos + 1}: {line[pos:]!r}"
        tokens.append((m.group(1), m.group(2), m.group(3), m.group(4)))
        pos = m.end()
    return tokens


def test_udev_rules_parse_and_do_what_they_say() -> None:
    rules = SYSTEMD / "60-gatewayd-modem.rules"
    lines = [ln for ln in rules.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert lines
    ids = set()
    for line in lines:
        tokens = parse_rule(line)
        for key, attr, op, _value in tokens:
            if op in ("==", "!="):
                assert key in MATCH_KEYS, (key, line)
            else:
                assert key in ASSIGN_KEYS, (key, line)
            if key in KEYS_WITH_ATTR:
                assert attr, (key, line)
            elif key != "TEST":  # TEST{mode} is optional
                assert attr is None, (key, line)
        d = {(k, a): (op, v) for k, a, op, v in tokens}
        assert d[("SUBSYSTEM", None)] == ("==", "tty")
        vendor, product = d[("ATTRS", "idVendor")], d[("ATTRS", "idProduct")]
        assert vendor[0] == product[0] == "=="
        assert re.fullmatch(r"[0-9a-f]{4}", vendor[1]) and re.fullmatch(r"[0-9a-f]{4}", product[1])
        ids.add((vendor[1], product[1]))
        assert d[("GROUP", None)] == ("=", "dialout") and d[("MODE", None)] == ("=", "0660")
        assert d[("ENV", "ID_MM_DEVICE_IGNORE")] == ("=", "1")  # ModemManager keeps off
        assert d[("SYMLINK", None)] == ("+=", "gatewayd-modem%n")  # the stable name
    assert len(ids) == len(lines)  # one rule per device


def test_udev_parser_catches_mistakes() -> None:
    with pytest.raises(AssertionError, match="syntax error"):
        parse_rule('SUBSYSTEM=="tty", GROUP=dialout')  # unquoted value
    assert parse_rule('ENV{ID_MM_DEVICE_IGNORE}="1"') == [("ENV", "ID_MM_DEVICE_IGNORE", "=", "1")]
