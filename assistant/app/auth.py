"""Accounts of the chat app: bcrypt-hashed passwords and a role (``user`` or ``admin``).

Accounts come from the users file (``POLICYLAB_USERS_FILE``, default ``<data_dir>/users.json``)
and from ``POLICYLAB_USERS="alice:password:admin,bob:password:user"``; an account in the
environment replaces one of the same name in the file. The file only ever holds bcrypt hashes
(``policylab add-user`` writes it); a password given in the environment is hashed in memory.

Users file, JSON::

    {"users": [{"username": "alice", "password_hash": "$2b$12$...", "role": "admin"}]}

or TOML::

    [[users]]
    username = "alice"
    password_hash = "$2b$12$..."
    role = "admin"
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import tomllib
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import bcrypt

from assistant.settings import Settings

log = logging.getLogger(__name__)

ROLES = ("user", "admin")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
BCRYPT_HASH = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")
MAX_PASSWORD_BYTES = 72  # bcrypt's limit: longer passwords are refused, never silently truncated


class AccountError(ValueError):
    """An account definition that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Account:
    username: str
    password_hash: str
    role: str = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_password(password: str, rounds: int = 12) -> str:
    """A bcrypt hash of ``password`` (refuses empty passwords and those over 72 bytes)."""
    if not password:
        raise AccountError("The password is empty.")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise AccountError(f"The password is longer than {MAX_PASSWORD_BYTES} bytes (bcrypt's limit); choose a shorter one.")
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)).decode("ascii")


def check_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))
    except ValueError:  # over-long password or malformed hash
        return False


def _account(username: str, password_hash: str, role: str, where: str) -> Account:
    username = username.strip()
    role = (role or "user").strip().lower()
    if not USERNAME.match(username):
        raise AccountError(f"{where}: user name {username!r} must be 1-64 letters, digits or . _ @ + -.")
    if role not in ROLES:
        raise AccountError(f"{where}: role {role!r} of {username!r} must be one of {', '.join(ROLES)}.")
    if not BCRYPT_HASH.match(password_hash):
        raise AccountError(f"{where}: the password of {username!r} is not a bcrypt hash; add the user with `policylab add-user`.")
    return Account(username, password_hash, role)


def parse_users_env(value: str, rounds: int = 12) -> list[Account]:
    """Accounts from ``name:password:role,…`` (the password is hashed unless it already is a bcrypt hash)."""
    accounts = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, sep, rest = item.partition(":")
        if not sep:
            raise AccountError(f"POLICYLAB_USERS entry {name!r} must look like name:password:role.")
        password, _, role = rest.rpartition(":") if rest.count(":") else (rest, "", "user")
        if not password:
            raise AccountError(f"POLICYLAB_USERS entry {name!r} has no password.")
        hashed = password if BCRYPT_HASH.match(password) else hash_password(password, rounds)
        accounts.append(_account(name, hashed, role or "user", "POLICYLAB_USERS"))
    return accounts


def load_users_file(path: Path) -> list[Account]:
    """Accounts of a JSON or TOML users file ([] when it does not exist)."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AccountError(f"{path} is not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: {exc}") from exc
    entries = data.get("users", []) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise AccountError(f"{path}: expected a list of users under `users`.")
    accounts = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise AccountError(f"{path}: every user must be an object with username, password_hash and role.")
        if "password" in entry and "password_hash" not in entry:
            raise AccountError(f"{path}: {entry.get('username')!r} has a plain-text password; "
                               "store only hashes (`policylab add-user NAME` writes one).")
        accounts.append(_account(str(entry.get("username", "")), str(entry.get("password_hash", "")),
                                 str(entry.get("role", "user")), str(path)))
    return accounts


def save_users_file(path: Path, accounts: list[Account]) -> None:
    """Write accounts as JSON (owner-readable only); TOML files are rewritten as TOML."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".toml":
        blocks = [f'[[users]]\nusername = "{a.username}"\npassword_hash = "{a.password_hash}"\nrole = "{a.role}"\n'
                  for a in accounts]
        text = "\n".join(blocks)
    else:
        text = json.dumps({"users": [asdict(a) for a in accounts]}, indent=2) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def add_user(path: Path, username: str, password: str, role: str = "user") -> Account:
    """Add or replace one account in the users file; returns it."""
    account = _account(username, hash_password(password), role, "add-user")
    accounts = [a for a in load_users_file(path) if a.username != account.username]
    save_users_file(path, accounts + [account])
    return account


def ensure_first_account(settings: Settings) -> tuple[str, str] | None:
    """When no account exists anywhere, create ``admin`` with a random password; returns (name, password)."""
    if AccountStore.from_settings(settings).accounts:
        return None
    password = secrets.token_urlsafe(12)
    add_user(settings.users_path, "admin", password, "admin")
    return "admin", password


class AccountStore:
    """The accounts in force; ``verify`` takes about the same time for unknown users as for known ones."""

    def __init__(self, accounts: list[Account]) -> None:
        self.accounts = {a.username: a for a in accounts}

    @classmethod
    def from_settings(cls, settings: Settings) -> "AccountStore":
        accounts = load_users_file(settings.users_path)
        if settings.users:
            accounts += parse_users_env(settings.users)
        return cls(accounts)

    def get(self, username: str) -> Account | None:
        return self.accounts.get((username or "").strip())

    def verify(self, username: str, password: str) -> Account | None:
        account = self.get(username)
        if account is None:
            check_password(password or "", _dummy_hash())
            return None
        return account if check_password(password or "", account.password_hash) else None


class AccountRegistry:
    """The accounts in force, re-read when the users file changes (environment accounts are hashed once)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._env = parse_users_env(settings.users) if settings.users else []
        self._stamp: tuple[float, int] | None = None
        self._store = AccountStore(self._env)

    def current(self) -> AccountStore:
        path = self.settings.users_path
        try:
            stat = path.stat()
            stamp = (stat.st_mtime, stat.st_size)
        except OSError:
            stamp = None
        if stamp != self._stamp:
            try:
                self._store = AccountStore(load_users_file(path) + self._env)
                self._stamp = stamp
            except AccountError as exc:
                log.error("Keeping the previous accounts: %s", exc)
        return self._store


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(8))
