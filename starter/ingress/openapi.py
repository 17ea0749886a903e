"""The OpenAPI document and its page. The webhook routes read raw bytes (the signature is
checked before anything parses them), so FastAPI cannot infer their bodies: `BODIES`
says them. `/docs` is Swagger UI served from this server (the `swagger-ui-bundle`
package), never from a CDN: the service runs where there may be no internet."""

from __future__ import annotations

import copy
from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

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


DOCS_ASSETS = "/docs/assets"


def serve_docs_page(app: FastAPI) -> None:
    """`GET /docs`: Swagger UI over `/openapi.json`, its script, styles and icon from
    `/docs/assets` (the app is built with `docs_url=None`, `redoc_url=None`: FastAPI's
    own pages load them from a CDN)."""
    app.mount(
        DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_bundle.swagger_ui_path)), "docs-assets"
    )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )
