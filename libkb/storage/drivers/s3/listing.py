"""Listing: ListObjectsV2 pages (lazily, under a plain prefix) and ListBuckets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote_plus

from libcloud.common.types import LibcloudError
from libcloud.storage.base import Container, Object

from libkb.storage.drivers.s3.calls import S3Calls
from libkb.storage.drivers.s3.parsing import etag_unquoted, iso_to_ms, local_name, xml_ns, xml_root


@dataclass(slots=True)
class ListPage:
    """One ListObjectsV2 page: ``(key, size, etag, mtime_ms)`` entries and the next token."""

    entries: list[tuple[str, int, str | None, int]]
    truncated: bool
    next_token: str | None


def parse_list_v2(body: bytes) -> ListPage:
    """Parse a ListObjectsV2 result; decodes keys when the server url-encoded them.

    Keys are decoded only if the response says ``EncodingType=url`` (a server
    that ignored the request parameter returns raw keys, which must not be
    decoded again).
    """
    root = xml_root(body)
    if root is None or local_name(root.tag) != "ListBucketResult":
        raise LibcloudError(value="S3 list: unexpected response (not a ListBucketResult)")
    ns = xml_ns(root)
    encoded = (root.findtext(ns + "EncodingType") or "").lower() == "url"
    entries = []
    for item in root.iterfind(ns + "Contents"):
        raw_key = item.findtext(ns + "Key") or ""
        name = unquote_plus(raw_key) if encoded else raw_key
        size = int(item.findtext(ns + "Size") or 0)
        etag = etag_unquoted(item.findtext(ns + "ETag"))
        mtime = iso_to_ms(item.findtext(ns + "LastModified"))
        entries.append((name, size, etag, mtime))
    truncated = (root.findtext(ns + "IsTruncated") or "false").strip().lower() == "true"
    token = root.findtext(ns + "NextContinuationToken") or None
    return ListPage(entries, truncated, token)


def iterate_buckets(s3: S3Calls) -> Iterator[Container]:
    """ListBuckets (not used by the adapter; handy for tools and tests)."""
    response = s3.send("GET", "")
    if response.status_code != 200:
        raise s3.fail(response, bucket="", key=None, operation="list buckets")
    root = xml_root(response.content)
    if root is None:
        return
    ns = xml_ns(root)
    for item in root.iterfind(f"{ns}Buckets/{ns}Bucket"):
        created = item.findtext(ns + "CreationDate")
        yield Container(
            name=item.findtext(ns + "Name") or "",
            extra={"creation_date": created},
            driver=s3.owner,
        )


def iterate_objects(s3: S3Calls, container: Container, prefix: str | None = None) -> Iterator[Object]:
    """Lazily page through ListObjectsV2 (1000 keys per request) under a plain prefix."""
    bucket = container.name
    params: dict[str, str] = {"list-type": "2", "encoding-type": "url", "max-keys": "1000"}
    if prefix:
        params["prefix"] = prefix
    last_key: str | None = None
    while True:
        response = s3.send("GET", bucket, params=params)
        if response.status_code != 200:
            raise s3.fail(response, bucket=bucket, key=prefix or "", operation="list", missing="bucket")
        page = parse_list_v2(response.content)
        for name, size, etag, mtime in page.entries:
            last_key = name
            yield Object(
                name=name,
                size=size,
                hash=etag,
                extra={"mtime_ms": mtime, "etag": etag},
                meta_data={},
                container=container,
                driver=s3.owner,
            )
        if not page.truncated:
            return
        params = dict(params)
        if page.next_token:
            params["continuation-token"] = page.next_token
            params.pop("start-after", None)
        elif last_key is not None:
            params["start-after"] = last_key
        else:
            raise LibcloudError(
                value=f"S3 list s3://{bucket}: truncated page without a continuation token",
                driver=s3.owner,
            )
