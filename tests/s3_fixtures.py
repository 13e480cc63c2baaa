"""Pytest fixtures for suites that talk to a real S3-compatible server (SeaweedFS ``weed mini`` on loopback).

A suite uses them by importing them into its ``conftest.py``
(``from tests.s3_fixtures import private_s3, s3_bucket, s3_server  # noqa: F401``), as
``tests/integration/conftest.py`` does.

* ``s3_server``: one server for the whole session (do not stop it);
* ``s3_bucket``: a fresh bucket on it, as ``(server, bucket_name)``;
* ``private_s3``: a factory for servers of the test's own, which it may stop, kill and start again
  (outages); each is stopped at the end of the test;
* ``s3_store_backend(server)``: the store's ``S3EndpointConfig`` for a server.

The launcher itself is :class:`gatewayd.testing.seaweedfs.SeaweedS3` (shared with the benchmarks).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gatewayd.store.config import S3EndpointConfig
from gatewayd.testing.seaweedfs import SeaweedS3

_bucket_numbers = itertools.count(1)


def s3_store_backend(server: SeaweedS3, **overrides: object) -> S3EndpointConfig:
    c = server.credentials
    kw: dict[str, object] = {"endpoint_url": server.endpoint_url, "region_name": c.region,
                             "access_key_id": c.access_key_id, "secret_access_key": c.secret_access_key,
                             "addressing_style": "path", "connect_timeout": 1.0, "read_timeout": 10.0}
    kw.update(overrides)
    return S3EndpointConfig(**kw)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def s3_bucket(s3_server: SeaweedS3) -> tuple[SeaweedS3, str]:
    name = f"test-{next(_bucket_numbers)}-{id(s3_server) % 10000}"
    s3_server.create_bucket(name)
    return s3_server, name


@pytest.fixture
def private_s3(tmp_path: Path) -> Iterator[Callable[[], SeaweedS3]]:
    servers: list[SeaweedS3] = []

    def make() -> SeaweedS3:
        server = SeaweedS3(tmp_path / f"seaweedfs-{len(servers)}")
        servers.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.close()
