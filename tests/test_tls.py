"""HTTPS with a private CA: ``ca_bundle`` / ``--ca-bundle`` trusts it (pool and
session alike), a certificate for another name is still refused, and
``verify_tls=False`` / ``--insecure`` skips verification with a warning."""

from __future__ import annotations

import json
import logging
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from .conftest import PageServer
from .helpers import by_url, run


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def bundle(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def https_server(ca: trustme.CA, name: str) -> PageServer:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(ctx)
    srv = PageServer(ssl_context=ctx)
    srv.add("/robots.txt", body="User-agent: *\nAllow: /\n", content_type="text/plain")
    srv.add("/", links=["/a"])
    srv.add("/a", title="over TLS")
    return srv


@pytest.fixture
def internal(ca: trustme.CA) -> Iterator[PageServer]:
    """An internal site: a certificate for 127.0.0.1 from the private CA."""
    with https_server(ca, "127.0.0.1") as srv:
        yield srv


@pytest.fixture(params=[True, False], ids=["pool", "session"])
def http_pool(request: pytest.FixtureRequest, pool_calls: list[str]) -> Iterator[bool]:
    yield bool(request.param)
    assert bool(pool_calls) is request.param  # each request took the road it should


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopcrawl", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_a_private_ca_is_trusted_with_ca_bundle(
    internal: PageServer, bundle: str, http_pool: bool,
) -> None:
    records, stats = run(internal.url + "/", ca_bundle=bundle, http_pool=http_pool)
    got = by_url(records)
    assert got[internal.url + "/a"].status == 200 and got[internal.url + "/a"].title == "over TLS"
    assert stats.errors == {}


def test_a_certificate_for_another_name_is_refused_even_from_the_ca(
    ca: trustme.CA, bundle: str, http_pool: bool,
) -> None:
    with https_server(ca, "intranet.example") as srv:
        records, stats = run(srv.url + "/", ca_bundle=bundle, http_pool=http_pool)
        assert srv.log == []
    assert [r.error for r in records] == ["tls_error"]
    assert "127.0.0.1" in (records[0].message or "")  # the name that did not match
    assert stats.retries == 0


def test_the_bundle_replaces_the_system_store(internal: PageServer, tmp_path: Path,
                                              bundle: str) -> None:
    """Another CA's bundle does not trust the server; SSL_CERT_FILE is not consulted."""
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    records, _ = run(internal.url + "/", ca_bundle=str(other))
    assert [r.error for r in records] == ["tls_error"]


def test_verification_off_crawls_and_warns(
    internal: PageServer, http_pool: bool, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "loopcrawl.net"):
        records, _ = run(internal.url + "/", verify_tls=False, http_pool=http_pool)
    assert by_url(records)[internal.url + "/a"].status == 200
    assert [r.getMessage() for r in caplog.records if r.name == "loopcrawl.net"] == [
        "TLS certificates are not verified (--insecure): any server can pose as the sites "
        "crawled"]


def test_the_command_line_options(internal: PageServer, bundle: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    base = ["crawl", internal.url + "/", "-o", "-", "--quiet", "--retries", "0"]
    r = cli(*base, "--ca-bundle", bundle, env=env)
    assert r.returncode == 0, r.stderr
    recs = {d["url"]: d for d in map(json.loads, r.stdout.splitlines())}
    assert recs[internal.url + "/a"]["status"] == 200
    assert "not verified" not in r.stderr
    r = cli(*[a for a in base if a != "--quiet"], "--insecure", env=env)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 2
    assert "TLS certificates are not verified" in r.stderr  # (--quiet: errors only)
    r = cli(*base, env=env)  # neither: the private CA is not trusted
    assert json.loads(r.stdout.splitlines()[0])["error"] == "tls_error"


@pytest.mark.parametrize("content", [None, b"not a certificate\n", b""],
                         ids=["missing", "not-pem", "empty"])
def test_a_bundle_that_does_not_load_is_one_clear_line(tmp_path: Path,
                                                       content: bytes | None) -> None:
    path = tmp_path / ("deep-" * 20) / "ca.pem"  # longer than a quoted setting's 60 characters
    path.parent.mkdir()
    if content is not None:
        path.write_bytes(content)
    r = cli("crawl", "http://127.0.0.1:1/", "--ca-bundle", str(path), "-q")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("loopcrawl: error: --ca-bundle ")
    assert f"cannot load {str(path)!r}: " in r.stderr  # the whole path, however long


def test_run_and_shell_take_the_options() -> None:
    for command in ("run", "shell"):
        out = cli(command, "--help").stdout
        assert "--ca-bundle" in out and "--insecure" in out, command


@pytest.mark.parametrize("trust", ["bundle", "insecure"])
def test_the_crawler_offers_http_1_1_by_alpn(
    ca: trustme.CA, bundle: str, http_pool: bool, trust: str,
) -> None:
    """Both TLS contexts offer exactly ``http/1.1`` by ALPN (RFC 7301): a
    server that prefers h2 still picks HTTP/1.1, the only protocol spoken,
    and one that knows no other would answer a wrong name with nothing."""
    from aiohttp import web

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    ctx.set_alpn_protocols(["h2", "http/1.1"])  # the server's preference first
    chosen: list[str | None] = []

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        assert request.transport is not None
        chosen.append(request.transport.get_extra_info("ssl_object").selected_alpn_protocol())
        return web.Response(text="<title>t</title>", content_type="text/html")

    settings = {"ca_bundle": bundle} if trust == "bundle" else {"verify_tls": False}
    with PageServer(handler=handle, ssl_context=ctx) as srv:
        records, _ = run(srv.url + "/", http_pool=http_pool, obey_robots=False, depth=0,
                         **settings)  # type: ignore[arg-type]
    assert [(r.status, r.title) for r in records] == [(200, "t")]
    assert chosen == ["http/1.1"]


def test_the_pools_own_context_verifies_and_offers_http_1_1(
    ca: trustme.CA, bundle: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An aiohttp without the verified context the pool borrows (a private
    name): the pool builds its own from the system store (``SSL_CERT_FILE``
    honoured), which verifies and offers ``http/1.1`` by ALPN."""
    import aiohttp.connector
    from aiohttp import web

    monkeypatch.delattr(aiohttp.connector, "_SSL_CONTEXT_VERIFIED")
    monkeypatch.setenv("SSL_CERT_FILE", bundle)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    chosen: list[str | None] = []

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        assert request.transport is not None
        chosen.append(request.transport.get_extra_info("ssl_object").selected_alpn_protocol())
        return web.Response(text="<title>t</title>", content_type="text/html")

    with PageServer(handler=handle, ssl_context=ctx) as srv:
        records, _ = run(srv.url + "/", http_pool=True, obey_robots=False, depth=0)
    assert [(r.status, r.title) for r in records] == [(200, "t")]
    assert chosen == ["http/1.1"]
    monkeypatch.delenv("SSL_CERT_FILE")  # the system store alone: the private CA refused
    with PageServer(handler=handle, ssl_context=ctx) as srv:
        records, _ = run(srv.url + "/", http_pool=True, obey_robots=False, depth=0, retries=0)
    assert [r.error for r in records] == ["tls_error"] and chosen == ["http/1.1"]


def test_without_a_bundle_the_system_store_decides(internal: PageServer, http_pool: bool) -> None:
    """With neither ``ca_bundle`` nor ``verify_tls=False`` certificates are
    verified on both paths: a private CA's is refused before any request."""
    records, stats = run(internal.url + "/", retries=0, http_pool=http_pool)
    assert [r.error for r in records] == ["tls_error"]
    assert internal.log == [] and stats.retries == 0
