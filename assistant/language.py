"""Offline language detection (lingua) for documents and questions."""

from __future__ import annotations

from functools import lru_cache

SUPPORTED = (
    "ENGLISH", "FRENCH", "SPANISH", "GERMAN", "VIETNAMESE", "ITALIAN", "PORTUGUESE", "DUTCH",
    "CHINESE", "JAPANESE", "KOREAN", "RUSSIAN", "ARABIC", "INDONESIAN", "THAI", "CZECH", "POLISH",
)

NAMES = {
    "en": "English", "fr": "French", "es": "Spanish", "de": "German", "vi": "Vietnamese", "it": "Italian",
    "pt": "Portuguese", "nl": "Dutch", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "ru": "Russian",
    "ar": "Arabic", "id": "Indonesian", "th": "Thai", "cs": "Czech", "pl": "Polish",
}


@lru_cache(maxsize=1)
def _detector():
    from lingua import Language, LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_languages(*(getattr(Language, n) for n in SUPPORTED)).build()


def detect_language(text: str, default: str = "en") -> str:
    """ISO 639-1 code of ``text``'s language, or ``default`` when it cannot tell (e.g. emoji only)."""
    sample = text[:4000]
    if not any(ch.isalpha() for ch in sample):
        return default
    language = _detector().detect_language_of(sample)
    if language is None:
        return default
    return language.iso_code_639_1.name.lower()


def language_name(code: str) -> str:
    return NAMES.get(code, code)
