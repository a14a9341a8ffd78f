"""Errors that tell the user what to do next; ``retryable`` says whether trying again later may help."""

from __future__ import annotations

from typing import Literal

ModelFailure = Literal["rate_limited", "server_error", "timeout", "connection", "rejected", "interrupted", "not_installed", "config"]


class PolicyLabError(Exception):
    """Base class of the assistant's own errors; ``str(error)`` is a message for the user."""

    retryable: bool = False


class ModelUnavailableError(PolicyLabError):
    """The chat model could not produce an answer.

    ``kind`` says why: ``rate_limited`` (HTTP 429), ``server_error`` (5xx), ``timeout``, ``connection``
    (refused or reset before any token), ``rejected`` (another 4xx: key, model name, request),
    ``interrupted`` (the stream broke after tokens had been sent), ``not_installed`` (local runtime
    or model file missing) or ``config`` (settings that cannot work).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: ModelFailure,
        retryable: bool,
        status: int | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.kind: ModelFailure = kind
        self.retryable = retryable
        self.status = status
        self.attempts = attempts
