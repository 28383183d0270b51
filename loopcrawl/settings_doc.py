"""``docs/settings.md``, written from the Settings fields' metadata.

    python -m loopcrawl.settings_doc > docs/settings.md

A test compares the committed file with ``render()``, so the reference
cannot drift from the fields it describes.
"""

from __future__ import annotations

from typing import Any

from .settings import SCRAPY_NAMES, SettingField, settings_fields

_HEAD = """\
# Settings reference

<!-- Generated from the Settings fields (loopcrawl/settings.py) by
     `python -m loopcrawl.settings_doc > docs/settings.md`: edit the fields, not this file.
     tests/test_settings_doc.py fails when the two differ. -->

Every setting of a crawl is a field of `loopcrawl.Settings`, and can be given
four ways, each checked the same way:

| where | how | an error names it as |
| --- | --- | --- |
| the command line (`crawl`, `run`) | its option: `--per-host 4` | `--per-host must be at least 1, not 0` |
| the command line, any setting | `-s per_host=4` (also `-s per-host=4`) | `-s per_host=0: must be at least 1, not 0` |
| a spider | `custom_settings = {"per_host": 4}` | `custom_settings['per_host'] must be at least 1, not 0` |
| Python | `Settings(per_host=4)`, `settings.replace(per_host=4)` | `per_host must be at least 1, not 0` (`ConfigError`, `.field == "per_host"`) |

For a spider, the command line wins over `custom_settings`, which wins over the
defaults (as in Scrapy). A bad value is one line on standard error and exit
code 2, before any request is sent. NaN and infinity are never a value
(a limit that can be off takes `none`), a whole number is not given as
`1.5`, a setting is not given a string where it takes a number (`"8"`), and a
list is not given one string (`seeds="http://..."`).

Values written as text (an option, `-s`): numbers as `8`, `0.5` or `1e3`;
true/false as `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`; `none` (or
nothing) for an optional setting; lists comma-separated (`-s allow=/a,/b`; an
option such as `--allow` is repeated instead); `user:password` for
`http_auth`; a JSON object for `headers` and `extra`. A flag (`--ignore-robots`,
`--no-cookies`, ...) sets its setting to the opposite of the default.

"""

_SCRAPY = """
## Scrapy's names

A spider brought from Scrapy with `custom_settings = {"DOWNLOAD_DELAY": 1}`
(or `-s DOWNLOAD_DELAY=1`) is answered with the name to use here
(`custom_settings['DOWNLOAD_DELAY']: use delay`); an unknown name lists the
settings, with the closest one.

| Scrapy | here |
| --- | --- |
"""


def _value(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return f"{int(v):,}"
    if isinstance(v, int | float):
        return f"{v:,}"
    if isinstance(v, tuple | dict) and not v:
        return "empty"
    return f"`{v}`"


def _allowed(f: SettingField) -> str:
    if f.choices:
        return ", ".join(f"`{c}`" for c in f.choices)
    if f.type is bool:
        return "true, false"
    if f.name == "http_auth":
        return "(user, password), or none"
    if f.min is None or f.max is None:
        kinds: dict[type, str] = {tuple: "list of strings", dict: "name → value", str: "text"}
        return kinds.get(f.type, "")
    low = f"more than {_value(f.min)}" if f.above else f"{_value(f.min)}"
    text = f"{low} … {_value(f.max)}" if not f.above else f"{low}, at most {_value(f.max)}"
    text += " (whole)" if f.type is int else ""
    return text + (", or none" if f.optional else "")


def _option(f: SettingField) -> str:
    if f.option is None:
        return ""
    names = f"`{f.short}`, `{f.option}`" if f.short else f"`{f.option}`"
    if f.type is bool:
        return names + " (flag)"
    return names + (f" {f.metavar}" if f.metavar else "")


def render() -> str:
    """The whole of ``docs/settings.md``."""
    rows = ["| setting | option | default | allowed | unit | meaning |",
            "| --- | --- | --- | --- | --- | --- |"]
    for f in settings_fields():
        text = f.help.replace("|", "\\|")
        rows.append(f"| `{f.name}` | {_option(f)} | {_value(f.default)} | {_allowed(f)} | "
                    f"{f.unit or ''} | {text} |")
    scrapy = [f"| `{k}` | {v if ' ' in v else f'`{v}`'} |" for k, v in SCRAPY_NAMES.items()]
    return _HEAD + "## Every setting\n\n" + "\n".join(rows) + "\n" + _SCRAPY + "\n".join(
        scrapy) + "\n"


if __name__ == "__main__":
    print(render(), end="")
