"""Languages of the portals: English and Simplified Chinese.

Catalogues are kept as ``.po`` files only; they are compiled in memory when first used, so no
``.mo`` build step exists. One Jinja2 environment per locale keeps rendering thread-safe.
"""

from __future__ import annotations

import threading
from gettext import NullTranslations
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

WEB_DIR = Path(__file__).parent
TEMPLATES_DIR = WEB_DIR / "templates"
TRANSLATIONS_DIR = WEB_DIR / "translations"

EN = "en"
ZH_CN = "zh_CN"
LOCALES: tuple[str, ...] = (EN, ZH_CN)
DEFAULT_LOCALE = EN

#: The value of ``<html lang>`` and of the language cookie for each locale.
HTML_LANG: dict[str, str] = {EN: "en", ZH_CN: "zh-CN"}

_lock = threading.RLock()
_translations: dict[str, NullTranslations] = {}
_environments: dict[str, Environment] = {}


def N_(message: str) -> str:
    """Mark a string for extraction without translating it now (it is translated when shown)."""
    return message


def normalise(code: str | None) -> str | None:
    """'zh-CN', 'zh_cn', 'zh', 'zh-Hans' → 'zh_CN'; 'en', 'en-GB' → 'en'; anything else → None."""
    if not code:
        return None
    tag = code.strip().replace("_", "-").lower()
    if tag == "zh" or tag.startswith("zh-"):
        # Traditional-script tags (zh-TW, zh-HK, zh-Hant) still read Simplified better than English.
        return ZH_CN
    if tag == "en" or tag.startswith("en-"):
        return EN
    return None


def from_accept_language(header: str | None) -> str | None:
    """The supported locale the browser prefers most, honouring q-values; None if none is supported."""
    if not header:
        return None
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        locale = normalise(tag)
        if locale is not None and quality > 0:
            choices.append((-quality, position, locale))
    return min(choices)[2] if choices else None


def choose_locale(cookie: str | None, accept_language: str | None) -> str:
    """The user's explicit choice (cookie) wins; then the browser's preference; then English."""
    return normalise(cookie) or from_accept_language(accept_language) or DEFAULT_LOCALE


def _compile(locale: str) -> NullTranslations:
    po_path = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po_path.exists():
        return NullTranslations()
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer)


def translations(locale: str) -> NullTranslations:
    if locale not in LOCALES:
        locale = DEFAULT_LOCALE
    found = _translations.get(locale)
    if found is None:
        with _lock:
            found = _translations.get(locale)
            if found is None:
                found = NullTranslations() if locale == EN else _compile(locale)
                _translations[locale] = found
    return found


def gettext(locale: str, message: str, **variables: Any) -> str:
    text = translations(locale).gettext(message)
    return text % variables if variables else text


def environment(locale: str) -> Environment:
    """The Jinja2 environment for a locale (built once, then shared: environments are thread-safe)."""
    if locale not in LOCALES:
        locale = DEFAULT_LOCALE
    env = _environments.get(locale)
    if env is None:
        with _lock:
            env = _environments.get(locale)
            if env is None:
                env = Environment(
                    loader=FileSystemLoader(TEMPLATES_DIR),
                    autoescape=select_autoescape(["html"]),
                    extensions=["jinja2.ext.i18n"],
                    trim_blocks=True,
                    lstrip_blocks=True,
                )
                env.policies["ext.i18n.trimmed"] = True
                env.install_gettext_translations(  # type: ignore[attr-defined]
                    translations(locale), newstyle=True
                )
                env.globals["locale"] = locale
                env.globals["html_lang"] = HTML_LANG[locale]
                _environments[locale] = env
    return env
