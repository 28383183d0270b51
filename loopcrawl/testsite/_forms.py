"""How the test site's pages are written: the forms of a link to an item,
and the pseudo-text the pages are cut from (made once at import)."""

from __future__ import annotations

import random
from collections.abc import Callable

from ._paths import CATEGORIES

# Forms of a link to item j (category cj); ``_HOST`` marks the request's host.
_FMTS = (
    "/cat{0}/item{1}.html",  # 0 absolute path
    "item{1}.html",  # 1 same directory (only for targets in the base directory)
    "./item{1}.html",  # 2 same directory, dotted
    "../cat{0}/item{1}.html",  # 3 up and down
    "http://" + "\x01" + "/cat{0}/item{1}.html",  # 4 absolute URL
    "HTTP://" + "\x01" + "/cat{0}/item{1}.html",  # 5 upper-case scheme
    "//" + "\x01" + "/cat{0}/item{1}.html",  # 6 protocol-relative
)
_DOTS, _PCT = 7, 8  # 7 dot-segments inside the path, 8 percent-encoded digits
_FORMS = tuple(range(9))  # every item page uses each form at least once
# Weighted pool for the extra random links (plain forms are the common case).
_EXTRA_FORMS = (0, 0, 0, 0, 1, 1, 3, 3, 4, 4, 2, 5, 6, 7, 8)
_PCT_TABLE = {ord(d): f"%{ord(d):02X}" for d in "0123456789"}
_FRAGMENTS = ("#reviews", "#specs", "#top")
_PADS = ((" ", ""), ("", " "), ("\n  ", "\n"), ("\t", " "))
_OFFSITE = (
    ("http://example.invalid/", "Example"),
    ("http://example.invalid/about.html", "About Example"),
    ("https://www.example.invalid/x", "Our partner"),
)


def _build_pool() -> tuple[str, list[int]]:
    """Pseudo-text made once at import; pages are slices of it, so rendering is cheap."""
    syl = ("lo", "rem", "ip", "sum", "do", "lor", "sit", "am", "et", "con", "sec", "tur",
           "ad", "pis", "cing", "el", "sed", "eius", "mod", "tem", "por", "in", "ci", "dunt",
           "ut", "la", "bo", "re", "ma", "gna", "ali", "qua", "en", "im", "mi", "nim", "ve",
           "ni", "quis", "nos", "trud", "ex", "er", "ta", "tion", "ul", "lam", "co", "vo")
    rng = random.Random(0x5EED)
    words = ["".join(rng.choice(syl) for _ in range(rng.randint(1, 3))) for _ in range(500)]
    parts: list[str] = []
    starts: list[int] = []
    pos = 0
    for _ in range(2000):
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(8, 14)))
        sentence = sentence[0].upper() + sentence[1:] + rng.choice((".", ".", ".", "?", "!"))
        starts.append(pos)
        parts.append(sentence)
        pos += len(sentence) + 1
    starts.append(pos)
    return " ".join(parts) + " ", starts


_POOL, _STARTS = _build_pool()
_NSTARTS = len(_STARTS) - 20


def _chunks(sentences: int) -> list[str]:
    """Every run of ``sentences`` consecutive sentences of the pool, precomputed."""
    return [_POOL[_STARTS[k]:_STARTS[k + sentences] - 1] for k in range(len(_STARTS) - 8)]


# T[n][k]: n sentences from sentence k on (about 1.5 MB in all, shared by every Site).
_T1, _T2, _T3, _T4 = _chunks(1), _chunks(2), _chunks(3), _chunks(4)
_NT = len(_T1)


def _item_href(form: int, j: int, r: Callable[[], float]) -> str:
    """The href of a link to item ``j`` in the given form."""
    if form < _DOTS:
        return _FMTS[form].format(j % CATEGORIES, j)
    cj = j % CATEGORIES
    if form == _PCT:
        return f"/cat{str(cj).translate(_PCT_TABLE)}/item{str(j).translate(_PCT_TABLE)}.html"
    x = r()
    if x < 0.4:
        return f"/cat{int(x * 50)}/../cat{cj}/item{j}.html"
    if x < 0.7:
        return f"/cat{cj}/./item{j}.html"
    return f"/../cat{cj}/item{j}.html"


_HEAD = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
)
_STYLE = (
    "<style>\nbody{font-family:system-ui,sans-serif;max-width:60em;margin:0 auto;"
    "padding:0 1em;line-height:1.5;color:#222}\nheader nav a{margin-right:1em}\n"
    "main p{margin:0 0 1em}\n#related li{margin:.2em 0}\nfooter{color:#666;"
    "border-top:1px solid #ddd;margin-top:2em;font-size:.9em}\n</style>\n</head>\n"
)
