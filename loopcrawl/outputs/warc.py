"""WARC 1.1 output (ISO 28500): a request and a response record per fetch.

Readable by standard tools (warcio, pywb, the Wayback Machine's), with block
and payload digests. What loopcrawl keeps is the final hop of each fetch
(redirects are followed inside the fetcher) and the body as decoded: a
``Content-Encoding``/``Transfer-Encoding`` the server sent is renamed to
``X-Crawler-Content-Encoding``/``X-Crawler-Transfer-Encoding`` and
``Content-Length`` set to the stored body, as other crawlers writing decoded
payloads do, so a replay tool does not try to decompress it again.
"""

from __future__ import annotations

import http
import io
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from .base import ByteFile, FileOutput, Role

if TYPE_CHECKING:
    from ..http import Request
    from ..net.fetched import Fetched

_RENAMED = {"content-encoding": "X-Crawler-Content-Encoding",
            "transfer-encoding": "X-Crawler-Transfer-Encoding"}


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


class WarcWriter(FileOutput):
    """Request/response record pairs in a ``.warc`` (or gzipped ``.warc.gz``,
    one gzip member per record) file, after a ``warcinfo`` record.

    Records are built in memory and written whole at ``flush()``, so the file
    always ends at a record's end after it: ``tell()`` is that offset, and a
    resumed crawl (``resume_at``) cuts back to it, as JSONL does. ``append``
    adds records (and a new warcinfo) to an existing file.
    """

    format: ClassVar[str] = "warc"
    roles: ClassVar[frozenset[Role]] = frozenset({"responses"})
    resumable: ClassVar[bool] = True

    def __init__(self, path: str, *, gzip: bool | None = None, append: bool = False,
                 resume_at: int | None = None, batch: int = 1 << 20) -> None:
        from warcio.warcwriter import WARCWriter

        from .. import __version__

        self.path = path
        self._batch = batch  # bytes of records held before a write
        self._buf = io.BytesIO()
        self._file = ByteFile(path, append=append, resume_at=resume_at)
        self._w = WARCWriter(self._buf, gzip=path.endswith(".gz") if gzip is None else gzip,
                             warc_version="1.1")
        self.count = 0
        if resume_at:  # the warcinfo record is already there
            return
        info = {"software": f"loopcrawl/{__version__}",
                "format": "WARC File Format 1.1",
                "conformsTo": "https://iipc.github.io/warc-specifications/"
                              "specifications/warc-format/warc-1.1/"}
        self._w.write_record(self._w.create_warcinfo_record(path.rsplit("/", 1)[-1], info))

    def write_response(self, request: Request, fetched: Fetched) -> None:
        from warcio.statusandheaders import StatusAndHeaders

        url = fetched.url
        body = fetched.body
        headers = []
        for k, v in (fetched.headers or {}).items():
            low = k.lower()
            if low == "content-length":
                continue
            headers.append((_RENAMED.get(low, k), v))
        headers.append(("Content-Length", str(len(body))))
        resp_http = StatusAndHeaders(f"{fetched.status} {_reason(fetched.status)}".rstrip(),
                                     headers, protocol="HTTP/1.1")
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        req_body = fetched.request_body or b""
        req_http = StatusAndHeaders(f"{fetched.method} {target} HTTP/1.1",
                                    list((fetched.request_headers or {}).items()),
                                    is_http_request=True)

        w = self._w
        resp = w.create_warc_record(url, "response", payload=io.BytesIO(body),
                                    length=len(body), http_headers=resp_http)
        req = w.create_warc_record(url, "request", payload=io.BytesIO(req_body),
                                   length=len(req_body), http_headers=req_http)
        w.write_request_response_pair(req, resp)  # links them: WARC-Concurrent-To
        self.count += 1
        if self._buf.tell() >= self._batch:
            self.flush()

    def _take(self) -> bytes:
        data = self._buf.getvalue()  # whole records only: tell() is a record's end
        if data:
            self._buf.seek(0)
            self._buf.truncate()
        return data
