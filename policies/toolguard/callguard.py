"""The Tool Call Guard: scan a call's arguments before it is forwarded and its result before it is returned.

Pure: takes the actions in force and the JSON value, returns the verdict, the findings and the value to use
(masked where masking applies). Enforcement points (gateway, local API) decide what to do with a block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .detectors import Finding, mask, scan_hidden, scan_injection, scan_pii, scan_secrets

DEFAULT_ACTIONS = {"secrets": "mask", "pii": "alert", "injection": "block", "hidden": "alert", "definition": "block"}
SCANNERS: dict[str, Callable[[str], list[Finding]]] = {
    "secrets": scan_secrets,
    "pii": scan_pii,
    "injection": scan_injection,
    "hidden": scan_hidden,
}
MASKABLE = {"secrets", "pii"}
MAX_STRINGS = 10_000


@dataclass
class GuardResult:
    blocked: bool = False
    findings: list[dict] = field(default_factory=list)
    value: Any = None
    masked: bool = False
    reason: str = ""

    @property
    def alerted(self) -> bool:
        return bool(self.findings) and not self.blocked


def _walk(value: Any, fn: Callable[[str], str], budget: list[int]) -> Any:
    if isinstance(value, str):
        if budget[0] <= 0:
            return value
        budget[0] -= 1
        return fn(value)
    if isinstance(value, dict):
        return {k: _walk(v, fn, budget) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, fn, budget) for v in value]
    return value


def guard(value: Any, actions: Mapping[str, str], *, scanners: tuple[str, ...] = tuple(SCANNERS)) -> GuardResult:
    """Scan every string in ``value`` with the scanners whose action is not ``allow``."""
    result = GuardResult(value=value)
    active = [(name, SCANNERS[name], actions.get(name, DEFAULT_ACTIONS[name])) for name in scanners if name in SCANNERS]
    active = [(n, s, a) for n, s, a in active if a != "allow"]
    if not active:
        return result

    def visit(text: str) -> str:
        to_mask: list[Finding] = []
        for name, scan, action in active:
            found = scan(text)
            if not found:
                continue
            for finding in found:
                entry = finding.as_dict()
                entry["action"] = action
                result.findings.append(entry)
            if action == "block" and not result.blocked:
                result.blocked = True
                result.reason = f"{found[0].category} ({found[0].rule})"
            elif action == "mask" and name in MASKABLE:
                to_mask.extend(found)
        if to_mask:
            result.masked = True
            return mask(text, to_mask)
        return text

    result.value = _walk(value, visit, [MAX_STRINGS])
    return result
