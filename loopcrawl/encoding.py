"""Which text a page's bytes are: header, BOM, <meta>, then detection.

The order is the HTML standard's (and Scrapy's, through w3lib): the
Content-Type charset, a byte-order mark, a ``<meta charset>`` or
``http-equiv`` declaration, then a guess. Labels are mapped as browsers map
them (ISO-8859-1 → windows-1252, GB2312 → GB18030, Shift_JIS → cp932).
Invalid bytes become U+FFFD; nothing here raises on hostile input.
"""

from __future__ import annotations

from w3lib.encoding import html_to_unicode

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
    header = f"text/html; charset={charset}" if charset else None
    encoding, text = html_to_unicode(header, body, auto_detect_fun=_detect)
    if encoding in _UTF8 and "\ufffd" not in text and not body.startswith(_BOMS[0]):
        return body, encoding
    return text, encoding


def decode_text(body: bytes, content_type: str | None) -> tuple[str, str]:
    """(encoding name, text) of a response body, by the same rules as
    ``decode_html`` but always as ``str`` (``Response.text``)."""
    return html_to_unicode(content_type, body, auto_detect_fun=_detect)
