"""Integration suites: a real S3-compatible server (see tests/s3_fixtures.py)."""

from tests.s3_fixtures import private_s3, s3_bucket, s3_server, s3_store_backend

__all__ = ["private_s3", "s3_bucket", "s3_server", "s3_store_backend"]
