"""A local HTTP server answering like a CRM's REST API (HubSpot's CRM v3 here), recording
every request: the stand-in for outbound CRM reads."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def hubspot_pipeline(
    pipeline_id: str, label: str, stages: list[tuple[str, str, str, bool]]
) -> dict[str, Any]:
    """One deal pipeline as `GET /crm/v3/pipelines/deals` lists it; each stage is
    (id, label, probability, isClosed), in HubSpot's own string forms."""
    return {
        "id": pipeline_id,
        "label": label,
        "displayOrder": 0,
        "archived": False,
        "stages": [
            {
                "id": stage_id,
                "label": stage_label,
                "displayOrder": i,
                "archived": False,
                "metadata": {"isClosed": str(closed).lower(), "probability": probability},
            }
            for i, (stage_id, stage_label, probability, closed) in enumerate(stages)
        ],
    }


# HubSpot's default deal pipeline, as every portal has it.
HUBSPOT_DEFAULT_PIPELINE = hubspot_pipeline(
    "default",
    "Sales Pipeline",
    [
        ("appointmentscheduled", "Appointment Scheduled", "0.2", False),
        ("qualifiedtobuy", "Qualified To Buy", "0.4", False),
        ("contractsent", "Contract Sent", "0.9", False),
        ("closedwon", "Closed Won", "1.0", True),
        ("closedlost", "Closed Lost", "0.0", True),
    ],
)

# A second pipeline, as the real-world case's portal has it: its won and lost stages have
# numeric ids.
ENTERPRISE = hubspot_pipeline(
    "812345678",
    "Enterprise",
    [
        ("1187654319", "Discovery", "0.1", False),
        ("1187654320", "Security review", "0.6", False),
        ("1187654321", "Contract signed", "1.0", True),
        ("1187654322", "Lost to competitor", "0.0", True),
    ],
)


class FakeCrmApi:
    """A local HTTP server answering like a CRM's REST API, recording every request.

    `routes` maps a path (without the query) to (status, JSON body), for GET and POST
    alike; each request is recorded as `{"method", "path", "query" (parsed),
    "authorization"}`, a POST with its JSON `body` too. HubSpot's deal pipelines
    are served from the start (the default one; `hubspot_pipelines` adds others)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer({})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer({"body": json.loads(self.rfile.read(length) or b"null")})

            def _answer(self, extra: dict[str, Any]) -> None:
                parts = urlsplit(self.path)
                api.requests.append(
                    {
                        "method": self.command,
                        "path": parts.path,
                        "query": parse_qs(parts.query),
                        "authorization": self.headers.get("Authorization"),
                    }
                    | extra
                )
                status, body = api.routes.get(
                    parts.path, (404, {"status": "error", "message": "Object not found"})
                )
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.hubspot_pipelines()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def hubspot_pipelines(self, *extra: dict[str, Any]) -> None:
        """Serve `GET /crm/v3/pipelines/deals`: the default pipeline and `extra` ones."""
        pipelines = [HUBSPOT_DEFAULT_PIPELINE, *extra]
        self.routes["/crm/v3/pipelines/deals"] = (200, {"results": pipelines})

    def hubspot_deal(
        self, deal_id: str, company_id: str, *, amount: str = "24000", name: str = "Globex"
    ) -> None:
        """Serve a HubSpot CRM v3 deal with its company and one contact, closed now (the
        dev server's clock is this machine's): an onboarding that starts on time."""
        closed = datetime.now(UTC)
        self.routes[f"/crm/v3/objects/deals/{deal_id}"] = (
            200,
            {
                "id": deal_id,
                "properties": {
                    "dealname": f"{name} - annual",
                    "amount": amount,
                    "dealstage": "closedwon",
                    "closedate": closed.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                },
                "associations": {
                    "companies": {"results": [{"id": company_id, "type": "deal_to_company"}]},
                    "contacts": {"results": [{"id": f"{deal_id}9", "type": "deal_to_contact"}]},
                },
            },
        )
        self.routes[f"/crm/v3/objects/companies/{company_id}"] = (
            200,
            {"id": company_id, "properties": {"name": name, "domain": "globex.test"}},
        )
        self.routes[f"/crm/v3/objects/contacts/{deal_id}9"] = (
            200,
            {
                "id": f"{deal_id}9",
                "properties": {
                    "email": "hank@globex.test",
                    "firstname": "Hank",
                    "lastname": "Scorpio",
                    "jobtitle": "Operations lead",
                },
            },
        )
