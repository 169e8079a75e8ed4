"""An OpenAPI 3.1 description of the Open Dental API, generated from the SDK's spec (``spec/``).

For tools that speak OpenAPI (schemathesis, client generators, API browsers)::

    from odapi_async.openapi import openapi_document
    doc = openapi_document(server_url="http://127.0.0.1:30222/api/v1")

or ``python -m odapi_async.openapi [--server URL] > openapi.json``. It needs nothing beyond the SDK itself (the
emulator's extra is not required). It describes what the spec knows, as the spec knows it:

- values travel the way the API sends them: booleans as the strings ``"true"``/``"false"`` (in answers the
  desktop's ``"True"``/``"False"`` too), datetimes as ``"yyyy-MM-dd HH:mm:ss"``, numbers the API quotes
  (``numeric_string``) as strings, enumerations by name;
- answer rows list every documented field and require none (each GET answers its own documented subset);
- errors are plain-text explanations (``text/plain``), under the status codes each page lists.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from odapi_async._spec import load_spec
from odapi_async.emulator._catalog.row_shapes import (
    ROW_FORMS,  # the docs' per-operation forms (no server needed)
)

__all__ = ["openapi_document"]

OPENAPI_VERSION = "3.1.0"
#: The security scheme's name in the document.
SCHEME = "ODFHIR"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
DATETIME_PATTERN = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
TIME_PATTERN = r"^\d{2}:\d{2}:\d{2}$"
_ERROR_TEXT = {
    "400": "Bad request (with a plain-text explanation).",
    "401": "Missing or invalid keys, or a missing API permission.",
    "404": "Not found (with a plain-text explanation).",
    "405": "Method not allowed.",
    "410": "Deprecated and no longer available.",
    "429": "Too many requests (Remote API throttle; see Retry-After).",
}
#: Answers every operation can give whatever its page lists: bad input, keys, throttling.
_ALWAYS = ("400", "401", "429")


def _value_schema(f: dict[str, Any], *, answer: bool, form: str | None = None) -> dict[str, Any]:
    """The JSON Schema of one field or parameter value, as the API sends (``answer``) or accepts it.

    ``form`` is the JSON form an operation's documented answer gives the field where it differs from the
    field's usual one ("number", "string", "Bool"; see ``emulator/_api/row_shapes.py``).
    """
    t = f.get("type", "str")
    schema: dict[str, Any]
    if form == "number":
        schema = {"type": "integer" if t == "int" else "number"}
    elif form == "string":
        schema = {"type": "string"}
    elif form == "Bool":
        schema = {"type": "string", "enum": ["True", "False"]}
    elif f.get("numeric_string"):
        schema = (
            {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"} if answer else {"type": ["string", "number"]}
        )
    elif t == "int":
        schema = {"type": "integer"}
    elif t == "float":
        schema = {"type": "number"}
    elif t == "bool":
        schema = {
            "type": "string",
            "enum": ["true", "false", "True", "False"] if answer else ["true", "false"],
        }
    elif t == "date":
        schema = {"type": "string", "pattern": DATE_PATTERN}
    elif t == "datetime":
        schema = {"type": "string", "pattern": DATETIME_PATTERN}
    elif t == "time":
        schema = {"type": "string", "pattern": TIME_PATTERN}
    elif t == "enum" and f.get("enum"):
        schema = {"type": "string", "enum": list(f["enum"])}
    elif t == "list":
        items = f.get("items")
        if isinstance(items, dict):
            item_schema = _object_schema(items.get("properties") or [], answer=answer)
        else:
            item_schema = _value_schema({"type": f.get("items_type") or "str"}, answer=answer)
        schema = {"type": "array", "items": item_schema}
    elif t == "object":
        schema = _object_schema(f.get("properties") or [], answer=answer)
    else:
        schema = {"type": "string"}
    if f.get("nullable"):
        kind = schema.get("type")
        if isinstance(kind, str):
            schema["type"] = [kind, "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    return schema


def _object_schema(
    fields: Sequence[dict[str, Any]], *, answer: bool, forms: dict[str, str] | None = None
) -> dict[str, Any]:
    forms = forms or {}
    props = {f["name"]: _value_schema(f, answer=answer, form=forms.get(f["name"])) for f in fields}
    return {"type": "object", "properties": props}


def _parameter(p: dict[str, Any], where: str) -> dict[str, Any]:
    schema = _value_schema(p, answer=False)
    if where == "path":
        schema = {"type": "integer", "minimum": 0}  # keys in the path are whole numbers
    out: dict[str, Any] = {
        "name": p["name"],
        "in": where,
        "required": where == "path" or bool(p.get("required")),
    }
    out["schema"] = schema
    return out


def _answer_schema(
    res: dict[str, Any], op: dict[str, Any], resource_ref: str | None
) -> dict[str, Any] | None:
    returns = op.get("returns", "none")
    if returns == "none":
        return None
    if returns == "string":
        return {"type": "string"}
    if op.get("response_model") == "dynamic":
        row: dict[str, Any] = {"type": "object"}
    elif op.get("response_fields"):
        row = _object_schema(op["response_fields"], answer=True)
    elif resource_ref is not None:
        forms = ROW_FORMS.get((res["url_segment"], op["id"]))
        row = (
            _object_schema(res["fields"], answer=True, forms=dict(forms)) if forms else {"$ref": resource_ref}
        )
    else:
        row = {"type": "object"}
    return {"type": "array", "items": row} if returns == "list" else row


def _operation(
    res: dict[str, Any], op: dict[str, Any], resource_ref: str | None, paging: list[str]
) -> dict[str, Any]:
    params = [_parameter(p, "path") for p in op.get("path_params") or []]
    params += [_parameter(p, "query") for p in op.get("query_params") or []]
    if op.get("paginated"):
        params += [{"name": n, "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}}
                   for n in paging]  # fmt: skip
    out: dict[str, Any] = {
        "operationId": f"{res['name']}.{op['id']}",
        "tags": [res["name"]],
        "parameters": params,
    }
    if op.get("version_added"):
        out["x-version-added"] = op["version_added"]
    if op.get("permission"):
        out["x-permission"] = op["permission"]
    if op.get("deprecated"):
        out["deprecated"] = True
    body = op.get("body_params") or []
    if op["method"] in ("POST", "PUT") and body:
        schema = _object_schema(body, answer=False)
        required = [p["name"] for p in body if p.get("required")]
        if required:
            schema["required"] = required
        out["requestBody"] = {"required": bool(required), "content": {"application/json": {"schema": schema}}}
    always = {*_ALWAYS, "404"} if op.get("path_params") else set(_ALWAYS)  # a key that names no row
    codes = sorted({str(c) for c in op.get("status_codes") or []} | always)
    if not any(c.startswith("2") for c in codes):
        codes.insert(0, "201" if op["method"] == "POST" else "200")
    if op.get("deprecated"):
        codes.append("410")
    answer = _answer_schema(res, op, resource_ref)
    responses: dict[str, Any] = {}
    for code in codes:
        if code.startswith("2"):
            entry: dict[str, Any] = {"description": "Success."}
            if answer is not None and code != "204":
                entry["content"] = {"application/json": {"schema": answer}}
        else:
            entry = {
                "description": _ERROR_TEXT.get(code, "Error."),
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
            if code == "429":
                entry["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
        responses[code] = entry
    out["responses"] = responses
    return out


def openapi_document(server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh dict) of every resource and operation in the spec.

    ``server_url`` (e.g. an emulator's ``endpoints["local"]``) replaces the spec's three base URLs.
    """
    spec = load_spec()
    paging = list(spec.get("pagination", {}).get("params", ["Offset", "Limit"]))
    servers = (
        [{"url": server_url}]
        if server_url
        else [{"url": url, "description": name} for name, url in spec.get("base_urls", {}).items()]
    )
    schemas: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for res in spec["resources"]:
        ref = None
        if res.get("fields"):
            schemas[res["name"]] = _object_schema(res["fields"], answer=True)
            ref = f"#/components/schemas/{res['name']}"
        for op in res.get("operations", []):
            paths.setdefault(op["path"], {})[op["method"].lower()] = _operation(res, op, ref, paging)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Open Dental REST API",
            "version": "v1",
            "description": "Generated by odapi_async from its machine-readable spec. "
            + spec.get("about", ""),
        },
        "servers": servers,
        "security": [{SCHEME: []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": spec.get("auth", {}).get("header", "Authorization"),
                    "description": "The header's value reads 'ODFHIR {DeveloperKey}/{CustomerKey}'.",
                }
            },
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m odapi_async.openapi", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--server", default=None, help="the one server URL to list (default: the spec's three)"
    )
    args = parser.parse_args(argv)
    json.dump(openapi_document(args.server), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
