"""Which text a page's bytes are: header, BOM, <meta>, then detection.

The order is the HTML standard's (and Scrapy's, through w3lib): the
Content-Type charset, a byte-order mark, a ``<meta charset>`` or
``http-equiv`` declaration, then a guess. Labels are mapped as browsers map
them (ISO-8859-1 → windows-1252, GB2312 → GB18030, Shift_JIS → cp932,
UTF-16 → UTF-16LE; a ``<meta>`` naming UTF-16 means UTF-8).
Invalid bytes become U+FFFD; nothing here raises on hostile input: a label
that names no charset a page is written in is ignored, as browsers ignore
labels the Encoding Standard lacks (``_charset``).
"""

from __future__ import annotations

from functools import lru_cache

from w3lib.encoding import html_body_declared_encoding, html_to_unicode, http_content_type_encoding

__all__ = ["decode_html", "decode_text"]

_UTF8 = frozenset(("utf-8", "utf8"))
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def _detect(body: bytes) -> str | None:
    """A guess for undeclared bytes: UTF-8 if they are valid UTF-8, else
    charset-normalizer's best match (it costs milliseconds: only reached
    when neither the header, a BOM nor the page says what it is)."""
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(body[:65536]).best()
    return best.encoding if best is not None else None


# Python's own codecs that w3lib resolves but no page is written in: idna and
# undefined raise on any decode, punycode is quadratic (1 MB: 33 s of a
# blocked loop), the escapes turn "\\u003c" into markup.
_NOT_CHARSETS = frozenset(("idna", "punycode", "undefined", "unicode-escape",
                           "raw-unicode-escape"))


def _lookup_charset(name: str | None) -> str | None:
    """``name`` (a codec w3lib resolved a label to) if pages may be decoded with
    it; None for the codecs above and for those that decode no text at all
    (``hex``, ``zlib``, ``base64``, ``rot13``: ``bytes.decode`` refuses them).
    ``utf-16`` is UTF-16LE, as the Encoding Standard (and so browsers) reads
    the label; w3lib reads it big-endian (RFC 2781). A BOM still wins:
    ``html_to_unicode`` reads it before the label. ``utf-32``, a label the
    standard lacks, stays big-endian. Called through ``_charset``, its cache."""
    if name is None or name in _NOT_CHARSETS:
        return None
    try:
        b"<".decode(name, "replace")  # not b"": empty input skips the check
    except (LookupError, UnicodeError):
        return None
    return "utf-16-le" if name == "utf-16" else name


# Cached by wrapping, not by decorating: mutmut 3 makes no mutant of a
# decorated function, and this one is worth mutating (docs/testing.md).
_charset = lru_cache(maxsize=256)(_lookup_charset)


# A <meta> found by reading the bytes as ASCII says the page is not UTF-16 or
# UTF-32. The HTML standard's prescan takes a UTF-16 label there as UTF-8 and
# ignores UTF-32, a label the Encoding Standard lacks ("" names no codec:
# refused, as _charset refuses). w3lib decodes by either: garbage.
_IN_META = {"utf-16": "utf-8", "utf-16-le": "utf-8", "utf-16-be": "utf-8",
            "utf-32": "", "utf-32-le": "", "utf-32-be": ""}


def _to_unicode(content_type: str | None, body: bytes) -> tuple[str, str]:
    """w3lib's ``html_to_unicode`` (BOM, header, ``<meta>``, detection), with a
    header or ``<meta>`` label ``_charset`` refuses taken as absent, and a
    ``<meta>`` one as ``_IN_META`` says."""
    enc = _charset(http_content_type_encoding(content_type))
    if enc is None:
        declared = html_body_declared_encoding(body)
        if declared in _IN_META:
            declared = _IN_META[declared]
        # Given as the header's, so that w3lib does not read a refused one again.
        enc = _charset(declared) or (None if declared is None else _detect(body) or "utf-8")
    return html_to_unicode(None if enc is None else f"text/html; charset={enc}", body,
                           auto_detect_fun=_detect)


def decode_html(body: bytes, charset: str | None) -> tuple[str | bytes, str]:
    """The page as lexbor should get it, and the encoding's name.

    UTF-8 comes back as the bytes themselves: lexbor reads UTF-8 natively,
    and given a ``str`` selectolax encodes it back to UTF-8 (~10 instructions
    a character for a page with any non-ASCII text, more than the decode).
    By header, the bytes are trusted as they are; by ``<meta>`` or detection,
    only when they decoded without a replacement (valid UTF-8, so the bytes
    are exactly what encoding the text would give) and without a BOM, which
    the decode drops. Anything else comes back as ``str``.
    """
    if charset is not None and charset.lower() in _UTF8 and not body.startswith(_BOMS[1:]):
        return body, "utf-8"
    encoding, text = _to_unicode(f"text/html; charset={charset}" if charset else None, body)
    if encoding in _UTF8 and "\ufffd" not in text and not body.startswith(_BOMS[0]):
        return body, encoding
    return text, encoding


def decode_text(body: bytes, content_type: str | None) -> tuple[str, str]:
    """(encoding name, text) of a response body, by the same rules as
    ``decode_html`` but always as ``str`` (``Response.text``)."""
    return _to_unicode(content_type, body)
