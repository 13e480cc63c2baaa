"""``gatewayd run`` does not load VoiceFocus (scipy: ~18 MB of RSS, 0.2 s of start-up) until a call asks for
it; the first VoiceFocus action loads it off the media path, then the media worker only constructs one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import sys
from gatewayd.cli import build_parser
from gatewayd.config import Config
from gatewayd.factories import media_factories
import gatewayd.daemon

build_parser()  # every command and benchmark module, as `gatewayd run` imports them
f = media_factories(Config())
before = sorted(m for m in sys.modules if m == "scipy" or m.startswith(("scipy.", "media.voicefocus")))
f.load_suppressor()
vf = f.suppressor()
print(before, type(vf).__name__, vf.enabled, "scipy.special" in sys.modules)
"""


def test_voicefocus_loads_on_first_use_only() -> None:
    r = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["[]", "LearnedVoiceFocus", "False", "True"]  # the default backend
