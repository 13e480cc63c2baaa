"""Validation of a handler's response as a whole (SPEC §2).

A response is either usable (:class:`ValidResponse`) or not (:class:`InvalidResponse`, which the engine
turns into INVALID_LAMBDA_RESPONSE with a top-level ``ErrorType`` / ``ErrorMessage``). Each action is
checked here only for shape (an object with a known string ``Type`` and object-or-null
``Parameters``); its parameters are validated when its turn comes (an ACTION_FAILED then).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gatewayd.sma.actions import ACTION_TYPES, CLOUD_ONLY_TYPES

SCHEMA_VERSION = "1.0"
MAX_ACTIONS = 10
MAX_ATTRIBUTE_KEYS = 100
MAX_ATTRIBUTES_BYTES = 20 * 1024

# INVALID_LAMBDA_RESPONSE error types.
SCHEMA_VERSION_MISMATCH = "SchemaVersionMismatch"
INVALID_ACTION_LIST = "InvalidActionList"
INVALID_ACTION_TYPE = "InvalidActionType"
TRANSACTION_ATTRIBUTES_INVALID_TYPE = "TransactionAttributesInvalidType"
TRANSACTION_ATTRIBUTES_INVALID_MAP_SIZE = "TransactionAttributesInvalidMapSize"
INVALID_RESPONSE_FORMAT = "InvalidResponseFormat"
ERROR_TYPES = frozenset({SCHEMA_VERSION_MISMATCH, INVALID_RESPONSE_FORMAT, INVALID_ACTION_LIST, INVALID_ACTION_TYPE,
                         TRANSACTION_ATTRIBUTES_INVALID_TYPE, TRANSACTION_ATTRIBUTES_INVALID_MAP_SIZE})


@dataclass(frozen=True)
class ValidResponse:
    """``actions``: None when absent or null (pending actions continue), else the list (maybe empty).
    ``attributes``: the TransactionAttributes to store from now on (None: unchanged)."""

    actions: tuple[Mapping[str, Any], ...] | None
    attributes: dict[str, Any] | None


@dataclass(frozen=True)
class InvalidResponse:
    error_type: str
    error_message: str


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def attributes_size(attributes: Mapping[str, Any]) -> int:
    """Serialised size in bytes (compact JSON, UTF-8) as the 20 KB limit counts it."""
    return len(json.dumps(attributes, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def validate_response(response: Any, current_attributes: Mapping[str, Any]) -> ValidResponse | InvalidResponse:
    """Check a handler response; never raises on any JSON value."""
    try:  # JSON has no NaN / Infinity (Python's json writes and reads them); nothing else may sneak in either
        json.dumps(response, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:
        return InvalidResponse(INVALID_RESPONSE_FORMAT, f"The response is not valid JSON: {str(exc)[:80]}.")
    if isinstance(response, list | tuple) and len(response) == 0:
        return ValidResponse(None, None)  # a Python handler's `return ()`
    if not isinstance(response, Mapping):
        return InvalidResponse(SCHEMA_VERSION_MISMATCH, f"The response must be a JSON object with SchemaVersion "
                                                        f"\"1.0\"; got {_json_kind(response)}.")
    if "SchemaVersion" not in response and "statusCode" in response and "body" in response:
        return InvalidResponse(SCHEMA_VERSION_MISMATCH, "SchemaVersion is missing: the response is an HTTP "
                                                        "{statusCode, body} wrapper; return the object itself.")
    version = response.get("SchemaVersion")
    if version != SCHEMA_VERSION:
        got = "missing" if "SchemaVersion" not in response else json.dumps(version, default=str)[:40]
        return InvalidResponse(SCHEMA_VERSION_MISMATCH, f"SchemaVersion must be \"1.0\"; got {got}.")

    actions: tuple[Mapping[str, Any], ...] | None = None
    raw_actions = response.get("Actions")
    if raw_actions is not None:
        if not isinstance(raw_actions, list | tuple):
            return InvalidResponse(INVALID_ACTION_LIST, f"Actions must be an array; got {_json_kind(raw_actions)}.")
        if len(raw_actions) > MAX_ACTIONS:
            return InvalidResponse(INVALID_ACTION_LIST, f"Too many actions: {len(raw_actions)}. "
                                                        f"Maximum number of actions is {MAX_ACTIONS}.")
        for i, action in enumerate(raw_actions, 1):
            if not isinstance(action, Mapping):
                return InvalidResponse(INVALID_ACTION_LIST, f"Action {i} must be an object; got {_json_kind(action)}.")
            type_ = action.get("Type")
            if not isinstance(type_, str) or not type_:
                return InvalidResponse(INVALID_ACTION_LIST, f"Action {i} has no Type.")
            if type_ not in ACTION_TYPES and type_ not in CLOUD_ONLY_TYPES:
                return InvalidResponse(INVALID_ACTION_TYPE, f"Action {i} has an unknown Type: {type_[:60]!r}.")
            params = action.get("Parameters")
            if params is not None and not isinstance(params, Mapping):
                return InvalidResponse(INVALID_ACTION_LIST, f"Action {i} ({type_}): Parameters must be an object; "
                                                            f"got {_json_kind(params)}.")
        actions = tuple(raw_actions)

    attributes: dict[str, Any] | None = None
    raw_attributes = response.get("TransactionAttributes")
    if raw_attributes is not None:
        if not isinstance(raw_attributes, Mapping):
            return InvalidResponse(TRANSACTION_ATTRIBUTES_INVALID_TYPE, "TransactionAttributes must be an object; "
                                                                        f"got {_json_kind(raw_attributes)}.")
        attributes = {} if not raw_attributes else {**current_attributes, **raw_attributes}
        if len(attributes) > MAX_ATTRIBUTE_KEYS:
            return InvalidResponse(TRANSACTION_ATTRIBUTES_INVALID_MAP_SIZE,
                                   "Transaction Attributes has too many mappings. "
                                   f"Maximum number of mappings is {MAX_ATTRIBUTE_KEYS}")
        size = attributes_size(attributes)
        if size > MAX_ATTRIBUTES_BYTES:
            return InvalidResponse(TRANSACTION_ATTRIBUTES_INVALID_MAP_SIZE,
                                   f"Transaction Attributes is too large: {size} bytes. "
                                   f"Maximum size is {MAX_ATTRIBUTES_BYTES} bytes")
    return ValidResponse(actions, attributes)
