"""The OpenAPI document's request bodies. The webhook routes read raw bytes (the
signature is checked before anything parses them), so FastAPI cannot infer them."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from workflows.models import ClosedWonDeal

_ANY_OBJECT = {"type": "object", "additionalProperties": True}
_CALL = _ANY_OBJECT | {
    "description": "A Segment call: type, messageId, event, properties / traits, "
    "userId, groupId or context.groupId, timestamp"
}
# path -> (media type, schema) of its POST body
BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "/webhooks/deals": ("application/json", {"$ref": "#/components/schemas/ClosedWonDeal"}),
    "/webhooks/hubspot": (
        "application/json",
        {"type": "array", "minItems": 1, "maxItems": 100, "items": _ANY_OBJECT},
    ),
    "/webhooks/salesforce": (
        "application/json",
        {
            "oneOf": [
                _ANY_OBJECT | {"required": ["Opportunity", "Account"]},
                # a new champion (rules §6.3): {Id, Role, Contact: {Name, Email},
                # Opportunity: {AccountId}}
                _ANY_OBJECT | {"required": ["OpportunityContactRole"]},
            ]
        },
    ),
    "/webhooks/salesforce/outbound": ("text/xml", {"type": "string"}),
    "/events": (
        "application/json",
        {
            "oneOf": [
                _CALL,
                {"type": "array", "maxItems": 1000, "items": _CALL},
                {
                    "type": "object",
                    "required": ["batch"],
                    "properties": {"batch": {"type": "array", "maxItems": 1000, "items": _CALL}},
                },
            ]
        },
    ),
}


def document_bodies(app: FastAPI) -> None:
    """Make `app.openapi()` describe the webhook bodies (`BODIES`, `ClosedWonDeal`)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            deal = ClosedWonDeal.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(deal.pop("$defs", {}))
            # A deal in another currency gives `acv` and `currency` instead (activities.deals).
            deal["required"].remove("acv_usd")
            components["ClosedWonDeal"] = deal
            for path, (media, body) in BODIES.items():
                schema["paths"][path]["post"]["requestBody"] = {
                    "required": True,
                    # a copy: a caller may change its document, never BODIES
                    "content": {media: {"schema": copy.deepcopy(body)}},
                }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
