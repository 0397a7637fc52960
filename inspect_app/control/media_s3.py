"""The S3-compatible media backend (AWS S3, MinIO, Cloudflare R2, ...): the only module that imports boto3.

Objects live under ``media/<key>`` in one bucket, with their content type, so the bucket can also be
served directly by a CDN. The client blocks; ``MediaStore`` calls this backend from a worker thread
(boto3's low-level clients are thread-safe). botocore's errors become ``InspectError`` here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from inspect_app.control.media import MAX_MEDIA_BYTES
from inspect_app.errors import InspectError

PREFIX = "media/"
# an unknown key: without ListBucket permission S3 says AccessDenied rather than NoSuchKey
MISSING = frozenset({"NoSuchKey", "404", "NotFound", "AccessDenied", "403"})

# Every call is bounded; and checksums only where S3 requires them: botocore's default CRC headers
# (since 1.36) are refused by several S3-compatible servers.
CLIENT_CONFIG = Config(
    connect_timeout=5,
    read_timeout=30,
    retries={"max_attempts": 3, "mode": "standard"},
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
)


class S3Client(Protocol):
    """The two calls of a boto3 S3 client this backend makes."""

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, ContentType: str) -> object: ...

    def get_object(self, *, Bucket: str, Key: str) -> Mapping[str, Any]: ...


def s3_client(*, endpoint_url: str, region: str, access_key_id: str, secret_access_key: str) -> S3Client:
    """A client for AWS (no endpoint) or an S3-compatible server; without keys, boto3's own chain
    (environment, shared config, instance role) supplies the credentials."""
    client: S3Client = boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        aws_access_key_id=access_key_id or None,
        aws_secret_access_key=secret_access_key or None,
        config=CLIENT_CONFIG,
    )
    return client


class S3Media:
    def __init__(self, *, client: S3Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def write(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=PREFIX + key, Body=data, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise InspectError(f"media storage refused the image: {exc}", code="media_storage") from exc

    def read(self, key: str) -> bytes | None:
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=PREFIX + key)
            body = found["Body"]
            try:
                data: bytes = body.read(MAX_MEDIA_BYTES + 1)  # bounded: the bucket may hold what we never wrote
            finally:
                body.close()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING:
                return None
            raise InspectError(f"media storage failed: {exc}", code="media_storage") from exc
        except BotoCoreError as exc:
            raise InspectError(f"media storage failed: {exc}", code="media_storage") from exc
        if len(data) > MAX_MEDIA_BYTES:
            raise InspectError(f"media object {key} is over the limit of {MAX_MEDIA_BYTES} bytes", code="media_storage")
        return data
