"""EventBridge as the sandbox needs it: event-pattern matching (AWS's content-filtering rules) and intrinsic resolution
for the values the template writes into patterns and alarm names."""

from __future__ import annotations

import fnmatch
import re
from typing import Any


def resolve(value: Any, context: dict[str, Any]) -> Any:
    """Resolve Ref / Fn::Sub / Fn::GetAtt / Fn::Join / Fn::If(simplified) against ``context`` (parameters, pseudo
    parameters, and logical id -> physical name or ARN). Unknown references are left as written."""
    if isinstance(value, list):
        return [resolve(v, context) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return context.get(value["Ref"], value["Ref"])
    if set(value) == {"Fn::Sub"}:
        spec = value["Fn::Sub"]
        text, extra = (spec, {}) if isinstance(spec, str) else (spec[0], resolve(spec[1], context))
        local = {**context, **extra}

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return str(local[name])
            if "." in name:
                base, attr = name.split(".", 1)
                return str(local.get(f"{base}.{attr}", local.get(base, name)))
            return match.group(0)

        return re.sub(r"\$\{([^}!]+)\}", sub, text)
    if set(value) == {"Fn::GetAtt"}:
        base, attr = value["Fn::GetAtt"]
        return context.get(f"{base}.{attr}", context.get(base, base))
    if set(value) == {"Fn::Join"}:
        sep, items = value["Fn::Join"]
        return sep.join(str(resolve(i, context)) for i in items)
    return {k: resolve(v, context) for k, v in value.items()}


def _match_one(matcher: Any, value: Any) -> bool:
    if not isinstance(matcher, dict):
        return matcher == value
    if "exists" in matcher:
        return (value is not _MISSING) == bool(matcher["exists"])
    if value is _MISSING:
        return False
    if "prefix" in matcher:
        p = matcher["prefix"]
        if isinstance(p, dict) and "equals-ignore-case" in p:
            return isinstance(value, str) and value.lower().startswith(p["equals-ignore-case"].lower())
        return isinstance(value, str) and value.startswith(p)
    if "suffix" in matcher:
        return isinstance(value, str) and value.endswith(matcher["suffix"])
    if "equals-ignore-case" in matcher:
        return isinstance(value, str) and value.lower() == str(matcher["equals-ignore-case"]).lower()
    if "wildcard" in matcher:
        return isinstance(value, str) and fnmatch.fnmatchcase(value, matcher["wildcard"])
    if "anything-but" in matcher:
        but = matcher["anything-but"]
        if isinstance(but, dict):
            return not _match_one(but, value)
        options = but if isinstance(but, list) else [but]
        return value not in options
    if "numeric" in matcher:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        spec = matcher["numeric"]
        ops = {"<": value.__lt__, "<=": value.__le__, "=": value.__eq__, ">": value.__gt__, ">=": value.__ge__}
        return all(ops[spec[i]](spec[i + 1]) for i in range(0, len(spec), 2))
    raise ValueError(f"unsupported EventBridge matcher {matcher!r}")


class _Missing:
    pass


_MISSING: Any = _Missing()


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """True when ``event`` matches ``pattern``: every key in the pattern must match; list values are OR-ed; a value in
    the event that is a list matches when any element matches."""
    for key, expected in pattern.items():
        actual = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(expected, dict) and not _is_matcher(expected):
            if not isinstance(actual, dict):
                return False
            if not matches(expected, actual):
                return False
            continue
        options = expected if isinstance(expected, list) else [expected]
        values = actual if isinstance(actual, list) else [actual]
        if not any(_match_one(m, v) for m in options for v in values):
            return False
    return True


def _is_matcher(value: dict[str, Any]) -> bool:
    keys = {"exists", "prefix", "suffix", "anything-but", "numeric", "equals-ignore-case", "wildcard", "cidr"}
    return len(value) == 1 and next(iter(value)) in keys
