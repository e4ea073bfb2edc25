"""A byte store in an S3-compatible bucket (AWS S3, MinIO, Ceph, moto...).

A blob ``a/b/c`` of the store ``s3://bucket/prefix`` is the object ``prefix/a/b/c``. Uploads go
through boto3's transfer manager: small files in one ``PutObject``, large ones as a multipart
upload, which S3 makes visible only once it is complete, so readers see all of a blob or nothing.

boto3 is an optional dependency (``pip install 'shipyard[s3]'``), imported when a store is made.
Credentials and region come from the usual AWS sources (environment, config files, instance
roles); ``endpoint_url`` points at a service other than AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

from shipyard.artifacts.base import BlobInfo, ByteStore
from shipyard.errors import InvalidInput, NotFound, ShipyardError, StoreUnavailable, missing_extra

MiB = 1024 * 1024
MULTIPART_THRESHOLD = 64 * MiB
"""Files at least this large are uploaded in parts."""
MULTIPART_CHUNK_SIZE = 16 * MiB
"""Size of one part (boto3 raises it for huge files to stay under S3's 10,000 parts)."""
MAX_CONCURRENCY = 8
"""Parts uploaded at once per file."""

_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_ACCESS_CODES = frozenset(
    {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
)


class S3ByteStore(ByteStore):
    """Blobs as objects under ``s3://bucket/prefix``."""

    def __init__(self, uri: str, endpoint_url: str | None = None) -> None:
        self.bucket, self.prefix = parse_s3_uri(uri)
        self.uri = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self.endpoint_url = endpoint_url
        try:
            import boto3
            from boto3.exceptions import S3UploadFailedError
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise missing_extra("boto3", "s3") from None
        self._errors: tuple[type[Exception], ...] = (
            BotoCoreError,
            ClientError,
            S3UploadFailedError,
        )
        try:
            self._client: Any = boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}),
            )
        except (BotoCoreError, ValueError) as exc:  # a missing profile, a malformed endpoint URL
            raise StoreUnavailable(
                f"cannot set up the S3 client for {self.uri}: {exc}. Check AWS_PROFILE, the AWS "
                "config files and SHIPYARD_S3_ENDPOINT_URL."
            ) from exc
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNK_SIZE,
            max_concurrency=MAX_CONCURRENCY,
        )

    def __repr__(self) -> str:
        where = f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"S3ByteStore({self.uri!r}{where})"

    def put_file(self, key: str, local_path: Path) -> None:
        """Upload the file (multipart when large); the object appears only when complete."""
        try:
            self._client.upload_file(
                str(local_path), self.bucket, self._key(key), Config=self._transfer
            )
        except FileNotFoundError as exc:
            raise NotFound(f"cannot store {local_path}: the file does not exist.") from exc
        except self._errors as exc:
            raise self._error("upload", key, exc) from exc

    def open(self, key: str) -> BinaryIO:
        """A streaming body of the object (``read(n)`` pulls bytes from the network)."""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self._errors as exc:
            raise self._error("read", key, exc) from exc
        return cast(BinaryIO, response["Body"])

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key`` (one ``HeadObject`` request)."""
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self._errors as exc:
            error = self._error("check", key, exc)
            if isinstance(error, NotFound):
                return False
            raise error from exc
        return True

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Objects whose key starts with ``prefix``, in key order, a page (1,000) at a time."""
        paginator = self._client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                for obj in page.get("Contents", ()):
                    yield BlobInfo(
                        key=obj["Key"][strip:],
                        size=int(obj["Size"]),
                        mtime=obj["LastModified"].timestamp(),
                    )
        except self._errors as exc:
            raise self._error("list", prefix, exc) from exc

    def delete(self, key: str) -> None:
        """Delete the object; S3 answers the same whether or not it existed."""
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except self._errors as exc:
            error = self._error("delete", key, exc)
            if not isinstance(error, NotFound):
                raise error from exc

    def close(self) -> None:
        """Close the client's connection pool."""
        self._client.close()

    # ---------------------------------------------------------------- helpers

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, action: str, key: str, exc: Exception) -> ShipyardError:
        """Turn a boto3/botocore failure into a Shipyard error that says what to do."""
        from botocore.exceptions import (
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        where = f"{self.uri}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")
        # The transfer manager re-raises the service's answer inside its own error.
        cause = exc.__context__ if isinstance(exc.__context__, ClientError) else exc
        code, status = "", None
        if isinstance(cause, ClientError):
            code = str(cause.response.get("Error", {}).get("Code", ""))
            status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return StoreUnavailable(
                f"the S3 bucket {self.bucket!r} does not exist ({where}); create it "
                f"(for example `aws s3 mb s3://{self.bucket}`) or point "
                "SHIPYARD_ARTIFACT_URI at an existing bucket."
            )
        if code in _MISSING_KEY_CODES or status == 404:
            return NotFound(f"no blob {key!r} in the artifact store {where}.")
        if code in _ACCESS_CODES or status == 403:
            return StoreUnavailable(
                f"S3 refused to {action} {key!r} in {where} ({code}); check the AWS credentials "
                "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE) and the bucket policy."
            )
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return StoreUnavailable(
                f"no usable AWS credentials to {action} {key!r} in {where}; set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE."
            )
        if isinstance(exc, EndpointConnectionError):
            return StoreUnavailable(
                f"cannot reach the S3 service for {where}: {exc}. Check SHIPYARD_S3_ENDPOINT_URL "
                "and that the service is running."
            )
        return StoreUnavailable(
            f"S3 failed to {action} {key!r} in {where}: {exc}. Retry; if it persists, check the "
            "service's health and SHIPYARD_S3_ENDPOINT_URL."
        )


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/some/prefix`` into ``("bucket", "some/prefix")``."""
    if not uri.startswith("s3://"):
        raise InvalidInput(f"{uri!r} is not an S3 URI; write it as s3://bucket/optional/prefix.")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise InvalidInput(f"S3 URI {uri!r} names no bucket; write it as s3://bucket/prefix.")
    return bucket, prefix.strip("/")
