"""Media in an S3-compatible bucket, against a real local S3 server (moto's, over HTTP): the store
the composition root builds from the settings writes each image under ``media/`` with its content
type, reads it back, and says so when the bucket is not there."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from inspect_app.control.media import MediaStore
from inspect_app.errors import InspectError
from inspect_app.services import build_media
from inspect_app.settings import Settings

pytestmark = pytest.mark.timeout(60)
PNG = b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(512)
REGION = "us-east-1"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def bucket_client(endpoint: str) -> Any:
    """A client of our own, to look in the bucket past the store."""
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


def settings_for(tmp_path: Path, endpoint: str, bucket: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        public_url="https://inspect.example",
        media_s3_bucket=bucket,
        media_s3_endpoint_url=endpoint,
        media_s3_region=REGION,
        media_s3_access_key_id="test",
        media_s3_secret_access_key="test",
    )


@pytest.fixture
def bucket(endpoint: str) -> str:
    name = f"inspect-media-{secrets.token_hex(4)}"
    bucket_client(endpoint).create_bucket(Bucket=name)
    return name


async def test_an_image_goes_into_the_bucket_under_media_and_comes_back(
    tmp_path: Path, endpoint: str, bucket: str
) -> None:
    store = build_media(settings_for(tmp_path, endpoint, bucket))
    key = await store.put(PNG, "image/png")
    assert await store.get(key) == (PNG, "image/png")
    assert store.url(key) == f"https://inspect.example/media/{key}"

    s3 = bucket_client(endpoint)
    listed = s3.list_objects_v2(Bucket=bucket)
    assert [item["Key"] for item in listed["Contents"]] == [f"media/{key}"]
    stored = s3.get_object(Bucket=bucket, Key=f"media/{key}")
    assert stored["Body"].read() == PNG and stored["ContentType"] == "image/png"
    assert not (tmp_path / "data" / "media").exists()  # nothing went to the local directory


async def test_an_unknown_key_is_none_and_an_object_outside_media_is_not_reached(
    tmp_path: Path, endpoint: str, bucket: str
) -> None:
    store = build_media(settings_for(tmp_path, endpoint, bucket))
    name = "C" * 43 + ".png"
    bucket_client(endpoint).put_object(Bucket=bucket, Key=name, Body=PNG)  # at the root, not under media/
    assert await store.get(name) is None
    assert await store.get("../" + name) is None


async def test_a_missing_bucket_is_an_error_of_ours(tmp_path: Path, endpoint: str) -> None:
    store: MediaStore = build_media(settings_for(tmp_path, endpoint, "no-such-bucket"))
    with pytest.raises(InspectError, match="media storage refused the image") as raised:
        await store.put(PNG, "image/png")
    assert raised.value.code == "media_storage"
    with pytest.raises(InspectError, match="media storage failed") as raised:
        await store.get("D" * 43 + ".png")
    assert raised.value.code == "media_storage"
