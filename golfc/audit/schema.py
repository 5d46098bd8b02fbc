"""The JSON Schema of ``golfc audit --json``: one document, the same shape for one folder or many.

docs/audit-json.md describes each field in words; tests/audit/test_json_schema.py validates real output against
this schema and checks that the page names every field, so the three cannot drift apart.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}
_STRING_OR_NULL = {"type": ["string", "null"]}
_VERDICT = {"enum": ["PASS", "WARN", "FAIL"]}

FINDING_SCHEMA: dict[str, object] = {
    "type": "object",
    "required": ["rule", "severity", "message", "file", "line"],
    "additionalProperties": False,
    "properties": {
        "rule": {"type": "string"},
        "severity": {"enum": ["INFO", "WARN", "FAIL"]},
        "message": {"type": "string"},
        "file": _STRING_OR_NULL,
        "line": _INT_OR_NULL,
    },
}

SEED_SCHEMA: dict[str, object] = {
    "type": "object",
    "required": [
        "seed", "role", "log", "primary", "val_bpb", "val_loss", "score_line", "other_scores", "artifact_bytes",
        "train_time_s", "eval_time_s", "steps", "step_avg_ms", "code_bytes_logged", "total_bytes_logged", "val_tokens",
    ],
    "additionalProperties": False,
    "properties": {
        "seed": _INT_OR_NULL,
        "role": {"enum": ["claimed", "counted", "other"]},
        "log": {"type": "string"},
        "primary": {"type": "boolean"},
        "val_bpb": _NUMBER_OR_NULL,
        "val_loss": _NUMBER_OR_NULL,
        "score_line": _STRING_OR_NULL,
        "other_scores": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["score_line", "val_bpb", "val_loss", "line"],
                "additionalProperties": False,
                "properties": {
                    "score_line": {"type": "string"},
                    "val_bpb": {"type": "number"},
                    "val_loss": _NUMBER_OR_NULL,
                    "line": _INT_OR_NULL,
                },
            },
        },
        "artifact_bytes": _INT_OR_NULL,
        "train_time_s": _NUMBER_OR_NULL,
        "eval_time_s": _NUMBER_OR_NULL,
        "steps": _INT_OR_NULL,
        "step_avg_ms": _NUMBER_OR_NULL,
        "code_bytes_logged": _INT_OR_NULL,
        "total_bytes_logged": _INT_OR_NULL,
        "val_tokens": _INT_OR_NULL,
    },
}

AUDIT_SCHEMA: dict[str, object] = {
    "type": "object",
    "required": [
        "folder", "verdict", "exit_code", "unusable", "findings", "seeds", "code_bytes", "unwrapped_code_bytes",
        "packed_code_bytes", "counted_code_bytes", "total_bytes_max", "stats",
    ],
    "additionalProperties": False,
    "properties": {
        "folder": {"type": "string"},
        "verdict": _VERDICT,
        "exit_code": {"enum": [0, 1, 2]},
        "unusable": _STRING_OR_NULL,
        "findings": {"type": "array", "items": FINDING_SCHEMA},
        "seeds": {"type": "array", "items": SEED_SCHEMA},
        "code_bytes": _INT_OR_NULL,
        "unwrapped_code_bytes": _INT_OR_NULL,
        "packed_code_bytes": _INT_OR_NULL,
        "counted_code_bytes": _INT_OR_NULL,
        "total_bytes_max": _INT_OR_NULL,
        "stats": {"type": "object"},
    },
}

DOCUMENT_SCHEMA: dict[str, object] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "golfc audit --json",
    "type": "object",
    "required": ["schema_version", "verdict", "exit_code", "audits"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "verdict": _VERDICT,
        "exit_code": {"enum": [0, 1, 2]},
        "audits": {"type": "array", "minItems": 1, "items": AUDIT_SCHEMA},
    },
}
