"""docs/api.md, rendered from the OpenAPI document (pure): the document is the source of truth,
and tests/test_openapi.py fails when the two differ. After changing c2c/api/openapi.json:

    python -m c2c.api.openapi_markdown > docs/api.md

It renders the subset of JSON Schema the document uses, and refuses (ValueError) a schema
keyword it does not know, so a new construct is rendered on purpose rather than dropped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

from c2c.api.openapi import load_document

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
HEADER = ("<!-- Generated from c2c/api/openapi.json by "
          "`python -m c2c.api.openapi_markdown > docs/api.md`: edit the document, not this "
          "file. -->")
_SCHEMA_KEYS = frozenset({
    "$ref", "type", "format", "enum", "const", "pattern", "minimum", "maximum", "minLength",
    "maxLength", "default", "anyOf", "items", "properties", "required", "additionalProperties",
    "description",
})

Json = Mapping[str, Any]


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: Any) -> str:
    return f"`{text}`"


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _link(ref: str) -> str:
    name = _ref_name(ref)
    return f"[{name}](#{name.lower()})"


def type_text(schema: Json) -> str:
    """One line saying what a value may be."""
    unknown = set(schema) - _SCHEMA_KEYS
    if unknown:
        raise ValueError(f"openapi_markdown cannot render schema keywords {sorted(unknown)}")
    if "$ref" in schema:
        return _link(schema["$ref"])
    if "anyOf" in schema:
        return " or ".join(type_text(option) for option in schema["anyOf"])
    types = schema.get("type", "any")
    types = [types] if isinstance(types, str) else list(types)
    nullable = "null" in types
    types = [t for t in types if t != "null"]
    base = " or ".join(_one_type(t, schema) for t in types) or "null"
    rules = _rules(schema)
    text = base + (f" ({'; '.join(rules)})" if rules else "")
    return text + (", or null" if nullable and types else "")


def _one_type(kind: str, schema: Json) -> str:
    if kind == "array":
        return "array of " + type_text(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), Mapping) \
            and "properties" not in schema:
        return "object of " + type_text(schema["additionalProperties"]) + " by name"
    if "format" in schema and kind == "string":
        return f"string ({schema['format']})"
    return kind


def _rules(schema: Json) -> list[str]:
    rules = []
    if "enum" in schema:
        rules.append("one of " + ", ".join(_code(v) for v in schema["enum"] if v is not None))
    if "const" in schema:
        rules.append("always " + _code(schema["const"]))
    if "minimum" in schema or "maximum" in schema:
        rules.append(f"{schema.get('minimum', '')}..{schema.get('maximum', '')}")
    if "minLength" in schema:
        rules.append(f"at least {_characters(schema['minLength'])}")
    if "maxLength" in schema:
        rules.append(f"at most {_characters(schema['maxLength'])}")
    if "pattern" in schema:
        rules.append("matching " + _code(schema["pattern"]))
    if "default" in schema:
        rules.append("default " + _code(schema["default"]))
    return rules


def _characters(count: int) -> str:
    return f"{count} character{'' if count == 1 else 's'}"


def _resolve(document: Json, item: Json) -> Json:
    while "$ref" in item and item["$ref"].startswith("#/components/") and len(item) == 1:
        _, _, section, name = item["$ref"].split("/")
        item = document["components"][section][name]
    return item


def _security(document: Json, requirements: list[Json]) -> str:
    schemes = document["components"]["securitySchemes"]
    ways = [schemes[name]["description"].rstrip(".") for requirement in requirements
            for name in requirement]
    return "**Authentication**, either: " + "; or ".join(ways) + "."


def _parameters(document: Json, parameters: list[Json]) -> Iterator[str]:
    yield "| parameter | in | required | value | meaning |"
    yield "|---|---|---|---|---|"
    for parameter in (_resolve(document, p) for p in parameters):
        yield (f"| {_code(parameter['name'])} | {parameter['in']} | "
               f"{'yes' if parameter.get('required') else 'no'} | "
               f"{_cell(type_text(parameter['schema']))} | "
               f"{_cell(parameter.get('description', ''))} |")


def _request_body(document: Json, body: Json) -> Iterator[str]:
    body = _resolve(document, body)
    for media, content in body["content"].items():
        yield f"**Request body** ({_code(media)}): {type_text(content['schema'])}"


def _responses(document: Json, responses: Json) -> Iterator[str]:
    yield "| status | body | meaning |"
    yield "|---|---|---|"
    for status, response in responses.items():
        response = _resolve(document, response)
        bodies = [f"{_code(media)}: {type_text(content['schema'])}"
                  for media, content in response.get("content", {}).items()]
        meaning = response["description"]
        headers = response.get("headers", {})
        if headers:
            meaning += " Headers: " + ", ".join(_code(name) for name in headers) + "."
        yield f"| {status} | {_cell('; '.join(bodies) or '(none)')} | {_cell(meaning)} |"


def _operation(document: Json, path: str, method: str, item: Json) -> Iterator[str]:
    operation = item[method]
    yield f"### {method.upper()} {path}"
    yield ""
    yield f"**{operation['summary']}** (`{operation['operationId']}`)"
    yield ""
    if operation.get("description"):
        yield operation["description"]
        yield ""
    if operation.get("security"):
        yield _security(document, operation["security"])
        yield ""
    parameters = list(item.get("parameters", [])) + list(operation.get("parameters", []))
    if parameters:
        yield from _parameters(document, parameters)
        yield ""
    if "requestBody" in operation:
        yield from _request_body(document, operation["requestBody"])
        yield ""
    yield from _responses(document, operation["responses"])
    yield ""


def _schema(document: Json, name: str, schema: Json) -> Iterator[str]:
    yield f"### {name}"
    yield ""
    if schema.get("description"):
        yield schema["description"]
        yield ""
    properties = schema.get("properties")
    if not properties:
        yield type_text({k: v for k, v in schema.items() if k != "description"})
        yield ""
        return
    required = set(schema.get("required", ()))
    yield "| field | value | meaning |"
    yield "|---|---|---|"
    for field, value in properties.items():
        meaning = value.get("description", "")
        if "$ref" in value:
            meaning = meaning or _resolve(document, {"$ref": value["$ref"]}).get(
                "description", "")
        shown = {k: v for k, v in value.items() if k != "description"}
        mark = "" if field in required else " (optional)"
        yield f"| {_code(field)}{mark} | {_cell(type_text(shown))} | {_cell(meaning)} |"
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield f"| (any other) | {_cell(type_text(schema['additionalProperties']))} | |"
    yield ""


def _webhooks(document: Json) -> Iterator[str]:
    """The requests c2c sends (OpenAPI 3.1 ``webhooks``), each as an operation."""
    webhooks = document.get("webhooks") or {}
    if not webhooks:
        return
    yield "## Webhooks"
    yield ""
    yield "Requests c2c sends to your endpoints."
    yield ""
    for name, item in webhooks.items():
        for method in METHODS:
            if method in item:
                yield from _operation(document, f"(webhook {name})", method, item)


def render(document: Json) -> str:
    info = document["info"]
    lines = [HEADER, "", f"# {info['title']} ({info['version']})", "", info["description"], ""]
    for tag in document.get("tags", []):
        lines += [f"## {tag['name'].capitalize()}", "", tag["description"], ""]
        for path, item in document["paths"].items():
            for method in METHODS:
                if method in item and tag["name"] in item[method].get("tags", ()):
                    lines += list(_operation(document, path, method, item))
    lines += list(_webhooks(document))
    lines += ["## Schemas", ""]
    for name, schema in document["components"]["schemas"].items():
        lines += list(_schema(document, name, schema))
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    sys.stdout.write(render(load_document()))


if __name__ == "__main__":
    main()
