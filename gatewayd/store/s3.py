"""S3 bucket backend through boto3 (AWS, or any S3-compatible server through ``endpoint_url``).

boto3 is imported here only, when an S3 endpoint is configured. botocore's own retries are off: the
uploader retries with its own backoff and knows when to give up waiting (SPEC §4).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, cast

from gatewayd.store.buckets import FileSlice, ObjectInfo, check_s3_key
from gatewayd.store.config import S3EndpointConfig
from gatewayd.store.errors import BucketError, NoSuchUpload, PermanentBucketError, TransientBucketError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

_TRANSIENT_CODES = frozenset({
    "RequestTimeout", "RequestTimeoutException", "SlowDown", "Throttling", "ThrottlingException",
    "ServiceUnavailable", "InternalError", "RequestTimeTooSkewed", "OperationAborted",
})
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})


def translate(e: Exception, what: str) -> BucketError:
    """A boto3/botocore exception as a transient or permanent :class:`BucketError`."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(e, ClientError):
        err: Mapping[str, Any] = e.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        msg = f"{what}: {code or status} {err.get('Message', '')}".rstrip()
        if code == "NoSuchUpload":
            return NoSuchUpload(msg, code, status)
        if code in _TRANSIENT_CODES or (status is not None and (status >= 500 or status in (408, 429))):
            return TransientBucketError(msg, code, status)
        return PermanentBucketError(msg, code, status)
    if isinstance(e, NoCredentialsError | PartialCredentialsError):
        return PermanentBucketError(f"{what}: {e}", "NoCredentials")
    if isinstance(e, BotoCoreError):  # connection refused/reset, timeouts, TLS
        return TransientBucketError(f"{what}: {e}", type(e).__name__)
    return TransientBucketError(f"{what}: {type(e).__name__}: {e}", type(e).__name__)


class S3Bucket:
    supports_multipart = True

    def __init__(self, config: S3EndpointConfig) -> None:
        import boto3
        from botocore.config import Config

        self.config = config
        session = boto3.session.Session(
            aws_access_key_id=config.access_key_id,
            aws_secret_access_key=config.secret_access_key,
            aws_session_token=config.session_token,
            profile_name=config.profile_name,
        )
        region = config.region_name or session.region_name or ("us-east-1" if config.endpoint_url else None)
        self.client: S3Client = session.client(
            "s3",
            endpoint_url=config.endpoint_url,
            region_name=region,
            verify=config.verify,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": config.addressing_style},
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=config.connect_timeout,
                read_timeout=config.read_timeout,
                max_pool_connections=config.max_connections,
                tcp_keepalive=True,
            ),
        )

    def describe(self) -> str:
        return f"S3 {self.config.endpoint_url or 'AWS'}"

    def check_key(self, key: str) -> None:
        check_s3_key(key)

    def put_object(self, bucket: str, key: str, body: FileSlice, content_type: str,
                   metadata: Mapping[str, str]) -> None:
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=cast(IO[Any], body),
                                   ContentLength=len(body), ContentType=content_type, Metadata=dict(metadata))
        except Exception as e:
            raise translate(e, f"PutObject s3://{bucket}/{key}") from e

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            r = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as e:
            if str(e.response.get("Error", {}).get("Code", "")) in _NOT_FOUND:
                return None
            raise translate(e, f"HeadObject s3://{bucket}/{key}") from e
        except Exception as e:
            raise translate(e, f"HeadObject s3://{bucket}/{key}") from e
        return ObjectInfo(int(r["ContentLength"]), r.get("ContentType"), dict(r.get("Metadata", {})), r.get("ETag"))

    def get_object(self, bucket: str, key: str) -> bytes:
        try:
            r = self.client.get_object(Bucket=bucket, Key=key)
            return r["Body"].read()
        except Exception as e:
            raise translate(e, f"GetObject s3://{bucket}/{key}") from e

    def put_object_acl(self, bucket: str, key: str, acl: str) -> None:
        try:
            self.client.put_object_acl(Bucket=bucket, Key=key, ACL=acl)  # type: ignore[arg-type]
        except Exception as e:
            raise translate(e, f"PutObjectAcl s3://{bucket}/{key}") from e

    def replace_metadata(self, bucket: str, key: str, content_type: str, metadata: Mapping[str, str]) -> None:
        try:
            self.client.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key},
                                    MetadataDirective="REPLACE", ContentType=content_type, Metadata=dict(metadata))
        except Exception as e:
            raise translate(e, f"CopyObject (metadata) s3://{bucket}/{key}") from e

    def create_multipart_upload(self, bucket: str, key: str, content_type: str,
                                metadata: Mapping[str, str]) -> str:
        try:
            r = self.client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type,
                                                    Metadata=dict(metadata))
        except Exception as e:
            raise translate(e, f"CreateMultipartUpload s3://{bucket}/{key}") from e
        return r["UploadId"]

    def upload_part(self, bucket: str, key: str, upload_id: str, part_number: int, body: FileSlice) -> str:
        try:
            r = self.client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=part_number,
                                        Body=cast(IO[Any], body), ContentLength=len(body))
        except Exception as e:
            raise translate(e, f"UploadPart {part_number} s3://{bucket}/{key}") from e
        return r["ETag"]

    def complete_multipart_upload(self, bucket: str, key: str, upload_id: str,
                                  parts: Sequence[tuple[int, str]]) -> None:
        try:
            self.client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in sorted(parts)]})
        except Exception as e:
            raise translate(e, f"CompleteMultipartUpload s3://{bucket}/{key}") from e

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception as e:
            err = translate(e, f"AbortMultipartUpload s3://{bucket}/{key}")
            if isinstance(err, NoSuchUpload):
                return  # already gone: that is what we wanted
            raise err from e

    def list_multipart_uploads(self, bucket: str, key: str) -> list[str]:
        try:
            r = self.client.list_multipart_uploads(Bucket=bucket, Prefix=key)
        except Exception as e:
            raise translate(e, f"ListMultipartUploads s3://{bucket}/{key}") from e
        return [u["UploadId"] for u in r.get("Uploads", []) if u.get("Key") == key and "UploadId" in u]

    def close(self) -> None:
        self.client.close()
