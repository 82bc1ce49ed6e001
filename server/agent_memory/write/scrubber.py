"""Mask obvious secrets (API keys, tokens, private keys, passwords in URLs) before anything is stored.

Each pattern matches a documented token format or a secret sitting next to a word that names it
(`password=...`, `Bearer ...`), so ordinary text that merely looks random (git SHAs, UUIDs, base64-ish
prose, long words) stays untouched. A masked secret becomes `[REDACTED:<kind>]`; the kinds are
reported to the caller. Patterns favour precision: a secret in a format not listed here is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MASK = "[REDACTED:{}]"

# (kind, pattern, group to mask: 0 = the whole match). Order matters: specific formats before generic ones.
_PATTERNS: list[tuple[str, re.Pattern[str], int]] = [
    (
        "private-key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r".*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.DOTALL,
        ),
        0,
    ),
    ("anthropic-api-key", re.compile(r"\bsk-ant-[a-z]+\d*-[A-Za-z0-9_\-]{20,}"), 0),
    (
        "openai-api-key",
        re.compile(
            r"\bsk-(?:proj-|svcacct-|admin-)?(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{32,}"
        ),
        0,
    ),
    ("aws-access-key-id", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA|AIPA|ANPA|ANVA|AGPA)[A-Z0-9]{16}\b"), 0),
    (
        "aws-secret-access-key",
        re.compile(
            r"(?i)(?:aws_?secret_?access_?key|aws_?secret|secret_?access_?key)[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
        ),
        1,
    ),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{50,255})\b"), 0),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"), 0),
    ("slack-webhook", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/_\-]{20,}"), 0),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])"), 0),
    ("google-oauth-token", re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,}"), 0),
    ("stripe-key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}\b"), 0),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), 0),
    (
        "bearer-token",
        re.compile(
            r"(?i)\bbearer\s+((?=[A-Za-z0-9\-._~+/]*\d)(?=[A-Za-z0-9\-._~+/]*[A-Za-z])[A-Za-z0-9\-._~+/]{16,}=*)"
        ),
        1,
    ),
    ("basic-auth", re.compile(r"(?i)\bauthorization\s*:\s*basic\s+([A-Za-z0-9+/]{8,}=*)"), 1),
    ("url-password", re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@?#\[\]]+:([^\s@/?#\[\]]+)@"), 1),
    (
        "password",
        re.compile(
            r"(?i)\b(?:password|passwd|passphrase|pwd|secret|api[_\-]?key|access[_\-]?token|auth[_\-]?token"
            r"|client[_\-]?secret)[\"']?\s*[:=]\s*[\"']?([^\s\"',;\[\]]{6,})"
        ),
        1,
    ),
]


@dataclass(frozen=True)
class Scrubbed:
    """Text with secrets masked, and the kind of each secret masked (in order of appearance by pattern)."""

    text: str
    kinds: tuple[str, ...] = ()


def scrub(text: str) -> Scrubbed:
    """Return the text with every recognised secret replaced by `[REDACTED:<kind>]`."""
    kinds: list[str] = []
    for kind, pattern, group in _PATTERNS:
        text = pattern.sub(_masker(kind, group, kinds), text)
    return Scrubbed(text, tuple(kinds))


def scrub_json(value: Any) -> tuple[Any, tuple[str, ...]]:
    """Scrub every string (keys and values) inside a JSON-like value; return it and the kinds masked."""
    kinds: list[str] = []

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            done = scrub(item)
            kinds.extend(done.kinds)
            return done.text
        if isinstance(item, dict):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(value), tuple(kinds)


def _masker(kind: str, group: int, kinds: list[str]) -> Callable[[re.Match[str]], str]:
    mask = MASK.format(kind)

    def replace(match: re.Match[str]) -> str:
        kinds.append(kind)
        if group == 0:
            return mask
        start, end = match.span(group)
        whole = match.group(0)
        offset = match.start()
        return whole[: start - offset] + mask + whole[end - offset :]

    return replace
