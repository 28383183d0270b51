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
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..errors import ConfigError, OutputError

if TYPE_CHECKING:
    from ..http import Request
    from ..net.fetcher import Fetched

_RENAMED = {"content-encoding": "X-Crawler-Content-Encoding",
            "transfer-encoding": "X-Crawler-Transfer-Encoding"}


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


class WarcWriter:
    """Appends request/response record pairs to a ``.warc`` (or gzipped
    ``.warc.gz``, one gzip member per record) file."""

    def __init__(self, path: str, *, gzip: bool | None = None) -> None:
        from warcio.warcwriter import WARCWriter

        from .. import __version__

        self.path = path
        try:
            self._fh = open(path, "wb")  # noqa: SIM115
        except OSError as e:
            raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None
        self._w = WARCWriter(self._fh, gzip=path.endswith(".gz") if gzip is None else gzip,
                             warc_version="1.1")
        self.count = 0
        info = {"software": f"loopcrawl/{__version__}",
                "format": "WARC File Format 1.1",
                "conformsTo": "https://iipc.github.io/warc-specifications/"
                              "specifications/warc-format/warc-1.1/"}
        try:
            self._w.write_record(self._w.create_warcinfo_record(path.rsplit("/", 1)[-1], info))
        except OSError as e:
            self._fh.close()
            raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None

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
        try:
            resp = w.create_warc_record(url, "response", payload=io.BytesIO(body),
                                        length=len(body), http_headers=resp_http)
            req = w.create_warc_record(url, "request", payload=io.BytesIO(req_body),
                                       length=len(req_body), http_headers=req_http)
            w.write_request_response_pair(req, resp)  # links them: WARC-Concurrent-To
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None
        self.count += 1

    def flush(self) -> None:
        try:
            self._fh.flush()
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._fh.close()
