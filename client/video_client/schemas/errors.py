# Generated from schemas/errors.py by `python client/contract_sync.py`: do not edit.
"""The error object of the contract and its codes."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ErrorCode(StrEnum):
    """Why a request or task did not succeed (contract: "Error codes")."""

    INVALID_REQUEST = "invalid_request"
    UNKNOWN_MODEL = "unknown_model"
    INVALID_PARAMETERS = "invalid_parameters"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    UPSTREAM_REJECTED = "upstream_rejected"
    CONTENT_MODERATION = "content_moderation"
    QUOTA_EXCEEDED = "quota_exceeded"
    UPSTREAM_FAILED = "upstream_failed"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    TIMEOUT = "timeout"
    DOWNLOAD_FAILED = "download_failed"
    CANCELLED = "cancelled"
    INTERNAL_ERROR = "internal_error"


class ErrorInfo(BaseModel):
    """`error` in status and dead-letter events."""

    model_config = ConfigDict(frozen=True)

    code: ErrorCode
    message: str
    retryable: bool = False
    upstream_code: str | None = None
    # The vendor's own id of the failing call (DashScope's `request_id`), for support tickets.
    upstream_request_id: str | None = None
