"""The lab rig file: what the ``lab`` backend needs to know about the bench, loaded from YAML.

A rig file describes one bench (see ``hil/rig.example.yaml`` and ``hil/ACCEPTANCE.md``):

* ``dut``: the device under test (a Pi running gatewayd) as seen from the test controller: where its
  recordings land (a directory the controller can read, e.g. an sshfs/NFS mount or rsync target, or
  ``s3://bucket/prefix``), how to ask it for its status (its status socket, or a command such as
  ``ssh pi@dut gatewayd status --json``) and its Prometheus metrics URL;
* ``ata``: the analog telephone adapter whose FXS port rings the Pi's FXO jack (model, how to reach
  it: straight by IP or through a registrar account, which FXS port), and its *profiles*: the caller-ID
  scheme, the disconnect signal it applies when the SIP side hangs up, and the ATA's own setting names
  and values for that profile. ``model: direct-sip`` means "no ATA": the controller calls a SIP URI
  itself (CI tests the lab code against gatewayd's own SIP trunk that way);
* ``controller``: the address the test controller's SIP user agent binds to;
* ``tle_a`` (optional): a Teltone TLE-A line simulator on a serial port, for ring and caller-ID edge
  cases the ATA cannot make (loaded and checked; the lab backend does not ring through it yet);
* ``tones``: the country whose call-progress tones the ATA is set to (and the simulator plays);
* ``tolerances``: the timing tolerances scenarios use on this bench.

Loading reuses gatewayd's configuration loader, so every error names the file, line, column and key
(``rig.yaml:12:9: ata.fxs_port: must be >= 1, got 0``) and unknown keys get a "did you mean".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gatewayd.config.loader import ConfigError, Problem, load, load_file
from gatewayd.config.model import Country, doc
from hil.simulator import CidMode, Disconnect

__all__ = ["AtaConfig", "AtaProfile", "ConfigError", "ControllerConfig", "DutConfig", "Problem", "Rig",
           "TleAConfig", "Tolerances", "TonesConfig", "load_rig", "load_rig_text"]

#: ATA models the acceptance guide documents settings for; any other name is accepted as "some ATA".
KNOWN_ATA_MODELS = ("grandstream-ht802", "grandstream-ht812", "grandstream-ht814", "cisco-spa112",
                    "direct-sip")
#: Disconnect signals an ATA can apply when the SIP side hangs up (BYE). Tones and silence the lab
#: simulator can also make itself by playing them over RTP before it hangs up.
ATA_DISCONNECTS = (Disconnect.CPC, Disconnect.POLARITY, Disconnect.BUSY, Disconnect.REORDER,
                   Disconnect.DIAL_TONE, Disconnect.SILENCE, Disconnect.BYE)

SettingValue = str | int | float | bool


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------ DUT
@dataclass(frozen=True)
class DutConfig:
    """The Pi running gatewayd, as the test controller reaches it."""

    bucket: str = field(metadata=doc(
        "Where the DUT's recordings can be read: a directory on the controller (a mount or rsync copy of the "
        "Pi's local bucket, the directory that holds the keys) or s3://bucket[/prefix]."))
    name: str = field(default="dut", metadata=doc("A name for reports."))
    line: str = field(default="", metadata=doc("The gatewayd line wired to the ATA (as named in the Pi's config)."))
    sip_uri: str = field(default="", metadata=doc(
        "The DUT's own SIP trunk, when it has one (sip:user@host:port); '' when it is reached only through "
        "its FXO jack."))
    status_socket: str = field(default="", metadata=doc("gatewayd's status socket, when the controller can "
                                                        "reach it (same machine or forwarded)."))
    status_command: tuple[str, ...] = field(default=(), metadata=doc(
        "A command printing `gatewayd status --json` of the DUT, e.g. [ssh, pi@dut, gatewayd, status, --json]."))
    metrics_url: str = field(default="", metadata=doc("gatewayd's Prometheus endpoint, e.g. http://dut:9464/metrics."))
    s3_endpoint_url: str = field(default="", metadata=doc("S3 endpoint for an s3:// bucket ('' : AWS)."))
    path: Literal["modem", "fxo", "sip"] = field(default="modem", metadata=doc(
        "The kind of line the DUT answers on: modem (USB voice modem), fxo (FXO board + sound card), or sip "
        "(only with ata.model direct-sip). The scenarios run for this path only."))
    script_file: str = field(default="", metadata=doc(
        "The scripted HIL handler's HIL_SCRIPT file on the Pi, as this controller sees it (e.g. through the "
        "same sshfs mount); '' : scenarios that script the DUT's handler cannot run."))
    transcript_file: str = field(default="", metadata=doc("Its HIL_TRANSCRIPT file, as this controller sees it."))
    prompts_dir: str = field(default="", metadata=doc(
        "The Pi's prompts bucket directory (hil-prompts), as this controller sees it: scenarios put their "
        "prompts there."))
    log_command: tuple[str, ...] = field(default=(), metadata=doc(
        "A command printing gatewayd's log since it started, e.g. [ssh, pi@dut, journalctl, -u, gatewayd, -b, "
        "-o, cat]."))
    rings_before_answer: int = field(default=2, metadata=doc("What the Pi's line is configured with.", min=0))
    silence_hangup_s: float = field(default=30.0, metadata=doc("What the Pi's line is configured with.", min=0))
    max_call_s: float = field(default=120.0, metadata=doc("What the Pi's line is configured with.", min=0))
    cid_after_ring: int = field(default=1, metadata=doc("What the Pi's line is configured with (an fxo line's "
                                                        "FSK caller ID after this ring).", min=1))

    def check(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if bool(self.script_file) != bool(self.transcript_file):
            out.append(("script_file", "script_file and transcript_file go together"))
        if not self.bucket.strip():
            out.append(("bucket", "must name a directory or s3://bucket[/prefix]"))
        elif self.bucket.startswith("s3://") and not self.bucket[5:].split("/", 1)[0]:
            out.append(("bucket", f"{self.bucket!r} has no bucket name"))
        if self.sip_uri and not self.sip_uri.lower().startswith("sip:"):
            out.append(("sip_uri", f"{self.sip_uri!r} is not a sip: URI"))
        if self.metrics_url and not self.metrics_url.startswith(("http://", "https://")):
            out.append(("metrics_url", f"{self.metrics_url!r} is not an http(s) URL"))
        if self.s3_endpoint_url and not self.bucket.startswith("s3://"):
            out.append(("s3_endpoint_url", "only meaningful with an s3:// bucket"))
        return out

    @property
    def bucket_is_s3(self) -> bool:
        return self.bucket.startswith("s3://")


# ------------------------------------------------------------------------------------------ ATA
@dataclass(frozen=True)
class AtaProfile:
    """One way the ATA is set up: caller-ID scheme, disconnect signal, tones, and its own settings for that."""

    name: str = field(metadata=doc("Profile name (ata.active_profile picks one)."))
    cid: CidMode = field(default=CidMode.BELL202_MDMF, metadata=doc(
        "Caller-ID scheme the ATA sends: bell202-mdmf, bell202-sdmf, etsi-fsk-before-ring, etsi-dtmf, none."))
    disconnect: Disconnect = field(default=Disconnect.CPC, metadata=doc(
        "What the ATA does on the line when the SIP side hangs up: cpc (loop-current drop), polarity, busy, "
        "reorder, dial-tone, silence."))
    cpc_ms: int = field(default=600, metadata=doc("Loop-current drop length the ATA is set to (ms).", min=0,
                                                  max=10000))
    tone_after_disconnect: Literal["busy", "reorder", "dial", "none"] = field(default="busy", metadata=doc(
        "Tone the ATA plays after the disconnect signal."))
    country: Country | None = field(default=None, metadata=doc("Tone/ring country the ATA is set to "
                                                              "(default: tones.country)."))
    ring_cadence: tuple[float, ...] | None = field(default=None, metadata=doc(
        "Ring cadence the ATA is set to (on, off, ... seconds); null: the country's."))
    polarity_reversal_on_answer: bool = field(default=False, metadata=doc(
        "The ATA reverses battery when the call is answered (some UK/EU set-ups)."))
    settings: Mapping[str, SettingValue] = field(default_factory=dict, metadata=doc(
        "The ATA's own settings for this profile, by the name its web page or provisioning file uses "
        "(the acceptance guide lists the Grandstream HT80x ones). Documentation for the technician; "
        "not pushed to the ATA."))

    def check(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if not self.name.strip():
            out.append(("name", "must not be empty"))
        if self.disconnect not in ATA_DISCONNECTS:
            out.append(("disconnect", f"{self.disconnect.value!r} is not something an ATA does"))
        if self.ring_cadence is not None:
            if not self.ring_cadence or len(self.ring_cadence) % 2:
                out.append(("ring_cadence", "needs on/off pairs (an even number of durations)"))
            elif any(d <= 0 for d in self.ring_cadence):
                out.append(("ring_cadence", "durations must be positive"))
        return out


@dataclass(frozen=True)
class AtaConfig:
    """The ATA whose FXS port rings the DUT, and how the test controller calls through it."""

    active_profile: str = field(metadata=doc("The profile the ATA is set to now (one of profiles[].name)."))
    profiles: tuple[AtaProfile, ...] = field(metadata=doc("The ATA set-ups this bench uses."))
    model: str = field(default="grandstream-ht802", metadata=doc(
        f"ATA model: {', '.join(KNOWN_ATA_MODELS)} or another name; direct-sip: no ATA, call a SIP URI."))
    address: str = field(default="", metadata=doc(
        "Direct IP calling: the ATA's address (the INVITE goes to sip:<user>@address:sip_port)."))
    sip_port: int = field(default=5060, metadata=doc("The ATA port's SIP listening port (HT802: 5060 for "
                                                     "FXS1, 5062 for FXS2).", min=1, max=65535))
    user: str = field(default="hil", metadata=doc("User part of the Request-URI (direct IP) or the number "
                                                  "dialled at the registrar."))
    fxs_port: int = field(default=1, metadata=doc("FXS port wired to the DUT (1-based).", min=1, max=8))
    registrar: str = field(default="", metadata=doc(
        "Calling through a registrar/PBX instead: its SIP URI (sip:pbx.lab:5060); the controller registers "
        "as account and dials user there."))
    account: str = field(default="", metadata=doc("The controller's account at the registrar."))
    password: str = field(default="", metadata=doc("Its password."))
    transport: Literal["udp", "tcp"] = field(default="udp", metadata=doc("SIP transport."))
    codec: Literal["PCMU", "PCMA"] = field(default="PCMU", metadata=doc("G.711 codec (set the ATA to it too)."))
    dtmf: Literal["inband", "rfc4733"] = field(default="inband", metadata=doc(
        "How digits go to the ATA by default; in-band keeps level, twist and timing (the ATA regenerates "
        "RFC 4733 digits with its own)."))
    answer_timeout_s: float = field(default=60.0, metadata=doc("Longest ringing before giving up.", min=1))

    def check(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        names = [p.name for p in self.profiles]
        if not self.profiles:
            out.append(("profiles", "at least one profile is needed"))
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            out.append(("profiles", f"duplicate profile name(s): {', '.join(dup)}"))
        if self.profiles and self.active_profile not in names:
            out.append(("active_profile", f"{self.active_profile!r} is not a profile; known: {', '.join(names)}"))
        if bool(self.address) == bool(self.registrar):
            out.append(("address", "set exactly one of address (direct IP) and registrar (through a PBX)"))
        if self.address and not _is_ip(self.address):
            out.append(("address", f"{self.address!r} is not an IP address"))
        if self.registrar:
            if not self.registrar.lower().startswith("sip:"):
                out.append(("registrar", f"{self.registrar!r} is not a sip: URI"))
            if not self.account:
                out.append(("account", "calling through a registrar needs the controller's account"))
        if not self.user.strip():
            out.append(("user", "must not be empty"))
        return out

    @property
    def profile(self) -> AtaProfile:
        return next(p for p in self.profiles if p.name == self.active_profile)

    @property
    def analog(self) -> bool:
        """False for ``direct-sip`` (no ATA, no analog line in the path)."""
        return self.model != "direct-sip"

    def target_uri(self) -> str:
        """The SIP URI the controller calls to ring the DUT."""
        if self.address:
            suffix = ";transport=tcp" if self.transport == "tcp" else ""
            return f"sip:{self.user}@{self.address}:{self.sip_port}{suffix}"
        return self.user


# ------------------------------------------------------------------------------------------ the rest
@dataclass(frozen=True)
class ControllerConfig:
    """The test controller's SIP user agent."""

    bind_address: str = field(default="", metadata=doc(
        "Address to bind SIP and RTP to; '': the local address that routes to the ATA (127.0.0.1 for a "
        "loopback target)."))
    sip_port: int = field(default=0, metadata=doc("Local SIP port (0: any free port).", min=0, max=65535))
    rtp_port: int = field(default=0, metadata=doc("First RTP port (0: any).", min=0, max=65535))
    rtp_port_range: int = field(default=0, metadata=doc("RTP ports above rtp_port that may be used.", min=0))
    caller_user: str = field(default="hil", metadata=doc("From user when a ring has no caller ID to send."))

    def check(self) -> list[tuple[str, str]]:
        if self.bind_address and not _is_ip(self.bind_address):
            return [("bind_address", f"{self.bind_address!r} is not an IP address")]
        return []


@dataclass(frozen=True)
class TleAConfig:
    """A Teltone TLE-A with the TLE-TEST automated-test module, on a serial port."""

    port: str = field(metadata=doc("Serial device, e.g. /dev/ttyUSB0."))
    baud: int = field(default=9600, metadata=doc("Baud rate set on the unit.", min=300, max=115200))
    unit: int = field(default=0, metadata=doc("Unit number in :unit,cmd,params commands.", min=0, max=99))
    line: int = field(default=1, metadata=doc("The TLE-A line wired to the DUT.", min=1, max=2))
    commands: Mapping[str, int] = field(default_factory=dict, metadata=doc(
        "Command numbers by name (ring, send_caller_id, set_caller_id_mode, ...), checked against the unit's "
        "manual; overrides the built-in table in hil/backends/tle_a.py."))
    switch_in: tuple[str, ...] = field(default=(), metadata=doc(
        "Command that switches the DUT's line from the ATA to the TLE-A (an RJ11 relay), if any."))
    switch_out: tuple[str, ...] = field(default=(), metadata=doc("Command that switches it back to the ATA."))

    def check(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if not self.port.strip():
            out.append(("port", "must name a serial device"))
        out += [("commands", f"{k}: command numbers are >= 0") for k, v in self.commands.items() if v < 0]
        return out


@dataclass(frozen=True)
class TonesConfig:
    country: Country = field(default="us", metadata=doc("Call-progress tone plan the ATA is set to."))


@dataclass(frozen=True)
class Tolerances:
    """Timing tolerances for assertions on this bench (seconds)."""

    timing_s: float = field(default=0.15, metadata=doc("Event timing (HARDWARE.md §5.5: lab ±150 ms).", min=0))
    media_delay_s: float = field(default=0.15, metadata=doc(
        "Extra one-way audio delay through the ATA's jitter buffer (40-100 ms typical).", min=0))
    answer_s: float = field(default=1.0, metadata=doc("Slack on 'answered on ring N' (ring edges are not seen "
                                                      "on SIP; they are estimated from the cadence).", min=0))
    disconnect_budget_s: float = field(default=12.0, metadata=doc(
        "How long a tone/silence disconnect is kept up before the simulator hangs up anyway.", min=1))


@dataclass(frozen=True)
class Rig:
    dut: DutConfig = field(metadata=doc("The device under test."))
    ata: AtaConfig = field(metadata=doc("The ATA (or direct-sip)."))
    name: str = field(default="lab", metadata=doc("Bench name for reports."))
    controller: ControllerConfig = field(default_factory=ControllerConfig, metadata=doc("The controller's UA."))
    tle_a: TleAConfig | None = field(default=None, metadata=doc("Optional Teltone TLE-A."))
    tones: TonesConfig = field(default_factory=TonesConfig, metadata=doc("Country tones."))
    tolerances: Tolerances = field(default_factory=Tolerances, metadata=doc("Timing tolerances."))

    def check(self) -> list[tuple[str, str]]:
        if (self.dut.path == "sip") != (not self.ata.analog):
            return [("dut", f"path {self.dut.path!r} does not fit ata.model {self.ata.model!r} (sip goes "
                            "with direct-sip, modem/fxo with an ATA)")]
        return []

    @property
    def country(self) -> str:
        return self.ata.profile.country or self.tones.country


def load_rig_text(text: str, file: str = "<rig>") -> Rig:
    """Parse a rig file's text; :class:`ConfigError` lists every problem as ``file:line:col: key: message``."""
    rig, _ = load(text, Rig, file)
    return rig


def load_rig(path: str | Path) -> Rig:
    rig, _ = load_file(path, Rig)
    return rig
