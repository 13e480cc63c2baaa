"""pytest plumbing for the HIL scenarios: ``--backend emulator|lab``, ``--rig``, ``--results``, ``--path``.

Fixtures:

* ``path``: every scenario that asks for it runs once per line path (modem, fxo, sip; ``--path`` narrows);
* ``line``: the :class:`~hil.simulator.LineSimulator` of the selected backend for that path, configured
  from the scenario's ``@pytest.mark.hil_line(**LineConfig fields)`` and reset; a scenario marked
  ``@pytest.mark.requires("cap", ...)`` is skipped ("backend lacks cap") where the simulator cannot
  honour it;
* ``dut``: a real ``gatewayd run`` process (:class:`hil.dut.Dut`) on that simulator's line, with the
  scripted handler; ``@pytest.mark.hil_dut(**DutSettings fields)`` sets its line. One simulator and
  one daemon live at a time: scenarios are ordered by path and daemon settings, and the daemon is
  restarted only when those change (or it died).

``--results DIR``: per scenario, the audio each simulator heard (``heard-N.wav``) and the recordings
that appeared in the bucket are copied to ``DIR/<scenario>/``; JUnit XML comes from ``--junitxml``.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, cast

import pytest

from hil.backends import PATHS, make_simulator
from hil.backends.common import QUICK_RING
from hil.dut import Dut, DutSettings
from hil.scenarios.steps import standard_prompts
from hil.simulator import LineConfig, LineSimulator
from media.wav import write_wav


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("hil", "hardware-in-the-loop scenarios")
    g.addoption("--backend", choices=("emulator", "lab"), default="emulator",
                help="line simulator: emulator (CI, default) or lab (the bench rig, needs --rig)")
    g.addoption("--rig", default=None, metavar="RIG.yaml", help="the lab rig description (--backend lab)")
    g.addoption("--results", default=None, metavar="DIR",
                help="copy the audio the simulator heard and the DUT's recordings here, per scenario")
    g.addoption("--path", action="append", choices=PATHS, default=None, dest="hil_paths",
                help="run the scenarios on this line path only (repeatable; default: all)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil_line(**fields): LineConfig for the scenario's simulator")
    config.addinivalue_line("markers", "hil_dut(**fields): DutSettings for the scenario's gatewayd line")
    config.addinivalue_line("markers", "requires(*capabilities): skip where the simulator lacks one")


def _paths(config: pytest.Config) -> list[str]:
    chosen: list[str] | None = config.getoption("hil_paths")
    if config.getoption("backend") == "lab" and config.getoption("rig"):
        rig_path = _load_rig(config.getoption("rig")).dut.path  # the bench wires one line path
        return [p for p in (chosen or PATHS) if p == rig_path]
    return list(chosen) if chosen else list(PATHS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "path" in metafunc.fixturenames:
        metafunc.parametrize("path", _paths(metafunc.config))


def _marker_kwargs(item: pytest.Item, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in reversed(list(item.iter_markers(name))):  # closest marker wins
        out.update(m.kwargs)
    return out


HIL_DIR = Path(__file__).resolve().parent


def _path_of(item: pytest.Item) -> str | None:
    if HIL_DIR not in Path(item.path).resolve().parents:
        return None
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("path") if callspec is not None else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """HIL scenarios grouped by path, then by daemon settings (fewest simulator and daemon restarts)."""
    order = {p: i for i, p in enumerate(PATHS)}
    hil = [i for i in items if _path_of(i) is not None]
    if not hil:
        return

    def key(item: pytest.Item) -> tuple[int, str]:
        settings = json.dumps([_marker_kwargs(item, "hil_dut"), _marker_kwargs(item, "hil_line")], sort_keys=True,
                              default=str)
        return order[_path_of(item) or "sip"], settings

    first = items.index(hil[0])
    rest = [i for i in items if _path_of(i) is None]
    items[:] = rest[:first] + sorted(hil, key=key) + rest[first:]


# ---------------------------------------------------------------------------------------------- session
class HilSession:
    """One simulator and one daemon at a time, replaced when the path or the daemon's line changes."""

    def __init__(self, backend: str, rig: Any, workdir: Path) -> None:
        self.backend = backend
        self.rig = rig
        self.workdir = workdir
        self.sim: LineSimulator | None = None
        self.sim_path: str | None = None
        self.dut: Dut | None = None
        self.dut_key: str = ""
        self._n = 0

    def simulator(self, path: str) -> LineSimulator:
        if self.sim is not None and self.sim_path == path:
            return self.sim
        self.close()
        self._n += 1
        try:
            self.sim = make_simulator(self.backend, path, self.rig, self.workdir / f"sim{self._n}")
        except ImportError as e:  # pjsua2 (sip) is an optional extra
            pytest.skip(f"this machine lacks {e.name or e}")
        self.sim_path = path
        return self.sim

    def daemon(self, sim: LineSimulator, settings: DutSettings) -> Dut:
        if self.backend == "lab":
            _skip_if_not_on_this_rig(getattr(sim, "remote_dut", None), settings)  # the Pi's line is as configured
            return self._lab_dut()
        dut_line = getattr(sim, "dut_line", None)
        if dut_line is None:
            pytest.skip("backend lacks local-dut")
        line = dut_line(settings)
        key = json.dumps([dict(line.entry), dict(line.env)], sort_keys=True)
        if self.dut is not None and self.dut.alive and key == self.dut_key:
            return self.dut
        self.stop_daemon()
        self._n += 1
        self.dut = Dut(self.workdir / f"dut{self._n}", line, prompts=standard_prompts()).start()
        self.dut_key = key
        return self.dut

    def _lab_dut(self) -> Dut:
        """The bench's DUT is the Pi's own gatewayd (systemd's), reached as the rig file says; its line
        settings are the Pi's configuration, so ``hil_dut`` markers do not apply there."""
        if self.dut is None:
            from hil.backends.lab_dut import LabDut

            lab = LabDut(self.rig.dut, cache_dir=self.workdir / "lab-dut").start()
            for key, samples in standard_prompts().items():
                lab.put_prompt(key, samples)
            self.dut = cast(Dut, lab)
        return self.dut

    def stop_daemon(self) -> None:
        if self.dut is not None:
            self.dut.stop()
            self.dut = None
            self.dut_key = ""

    def close(self) -> None:
        self.stop_daemon()
        if self.sim is not None:
            close = getattr(self.sim, "close", None)
            if close is not None:
                close()
            self.sim = None
            self.sim_path = None


def _skip_if_not_on_this_rig(step: Any, arg: Any) -> None:
    """Run a lab backend's ``step(arg)``; the rig as set up cannot give what the scenario needs
    (``NotOnThisRig``, whose message names the ATA profile that would): skip rather than fail."""
    if step is None:
        return
    from hil.backends.lab import NotOnThisRig

    try:
        step(arg)
    except NotOnThisRig as e:
        pytest.skip(str(e))


def _load_rig(path: str | None) -> Any:
    if path is None:
        raise pytest.UsageError("--backend lab needs --rig RIG.yaml")
    from gatewayd.config.loader import ConfigError
    from hil.rig import load_rig

    try:
        return load_rig(path)
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from e


@pytest.fixture(scope="session")
def hil_session(request: pytest.FixtureRequest) -> Iterator[HilSession]:
    backend: str = request.config.getoption("backend")
    rig = _load_rig(request.config.getoption("rig")) if backend == "lab" else None
    with tempfile.TemporaryDirectory(prefix="gatewayd-hil-") as tmp:
        s = HilSession(backend, rig, Path(tmp))
        try:
            yield s
        finally:
            s.close()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    b: str = request.config.getoption("backend")
    return b


@pytest.fixture
def tol(line: LineSimulator) -> float:
    """The simulator's timing tolerance (seconds): hil.tolerances for the emulators, the rig file's on the bench."""
    return float(line.tolerance_s)


@pytest.fixture
def results_dir(request: pytest.FixtureRequest) -> Path | None:
    root = request.config.getoption("results")
    if root is None:
        return None
    return Path(root) / re.sub(r"[^A-Za-z0-9_.\-\[\]]+", "_", request.node.name)


@pytest.fixture
def line(request: pytest.FixtureRequest, hil_session: HilSession, path: str,
         results_dir: Path | None) -> Iterator[LineSimulator]:
    sim = hil_session.simulator(path)
    missing = [c for m in request.node.iter_markers("requires") for c in m.args if c not in sim.capabilities]
    if missing:
        pytest.skip(f"backend lacks {missing[0]}")
    known = {f.name for f in fields(LineConfig)}
    kwargs = _marker_kwargs(request.node, "hil_line")
    unknown = set(kwargs) - known
    if unknown:
        raise pytest.UsageError(f"hil_line: unknown LineConfig fields {sorted(unknown)}")
    if hil_session.backend == "emulator":
        base = LineConfig(ring_cadence=QUICK_RING)
    else:
        base = getattr(sim, "default_config", LineConfig())  # the rig's active ATA profile
    sim.reset()
    _skip_if_not_on_this_rig(sim.configure, replace(base, **kwargs))
    try:
        yield sim
    finally:
        if results_dir is not None:
            results_dir.mkdir(parents=True, exist_ok=True)
            for i, clip in enumerate(getattr(getattr(sim, "heard", None), "clips", [])):
                write_wav(results_dir / f"heard-{i + 1}.wav", clip)  # each record_far_end() context
            far_end_audio = getattr(sim, "far_end_audio", None)
            if far_end_audio is not None:
                write_wav(results_dir / "heard-all.wav", far_end_audio())  # everything the DUT sent


@pytest.fixture
def dut(request: pytest.FixtureRequest, hil_session: HilSession, line: LineSimulator,
        results_dir: Path | None) -> Iterator[Dut]:
    settings = DutSettings(**_marker_kwargs(request.node, "hil_dut"))
    d = hil_session.daemon(line, settings)
    d.set_script({})
    d.mark()
    try:
        yield d
    finally:
        d.set_script({})
        if results_dir is not None:
            results_dir.mkdir(parents=True, exist_ok=True)
            for rec in d.recordings():
                shutil.copy2(rec, results_dir / f"recording-{rec.name}")
            (results_dir / "gatewayd.log").write_text(d.log_text())
            (results_dir / "transcript.jsonl").write_text("".join(json.dumps(e) + "\n" for e in d.transcript()))
