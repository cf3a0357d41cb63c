"""One Kubernetes document validated as one model, its errors naming the object and the field (``Pod default/web-1:
field spec.containers[0].resources.requests: cpu: 'x' is not a quantity``). Apart from ``objects`` (which picks the model
by apiVersion and kind) so that a model's own module can parse what it embeds (a PodTemplate's pod) without a cycle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import InvalidObject


def object_name(doc: Mapping[str, Any]) -> str:
    raw_meta = doc.get("metadata")
    meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
    name = str(meta.get("name") or "")
    namespace = meta.get("namespace")
    return f"{namespace}/{name}" if namespace else name


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "tagged-union", "union[")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def validation_error(kind: str, name: str, exc: ValidationError) -> InvalidObject:
    """The first error of a pydantic ValidationError, as an InvalidObject naming the field."""
    first = exc.errors()[0]
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if first.get("type") == "missing":
        message = "required field is missing"
    return InvalidObject(kind, name, _field_path(tuple(first.get("loc", ()))), message)


def parse_as(model: type[BaseModel], doc: Mapping[str, Any], kind: str | None = None) -> Any:
    """Validate ``doc`` as ``model``; raises InvalidObject naming the object and field."""
    kind = kind or str(doc.get("kind") or model.__name__)
    if not isinstance(doc, Mapping):
        raise InvalidObject(kind, "", "", "is not a mapping")
    meta = doc.get("metadata")
    if not isinstance(meta, Mapping) or not meta.get("name"):
        raise InvalidObject(kind, "", "metadata.name", "required field is missing")
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        error = validation_error(kind, object_name(doc), exc)
    except ValueError as exc:  # a validator raised outside pydantic's wrapping
        error = InvalidObject(kind, object_name(doc), "", str(exc))
    uid = meta.get("uid")
    error.uid = uid if isinstance(uid, str) else None
    raise error
