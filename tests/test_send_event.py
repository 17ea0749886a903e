"""`onboarding send-event` and `send-deal`: a product event posted to the ingress, signed as
Segment or as a Standard Webhook, and a deal posted to `/webhooks/deals` as a Standard
Webhook, against a small local HTTP server that records what it got; and the sample
inputs the README starts with (`examples/`) kept valid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from starter.cli import app
from starter.devserver import free_port
from workflows.models import ClosedWonDeal


@dataclass
class Ingress:
    """A stand-in for the HTTP ingress: records each POST, answers `status` + `answer`."""

    url: str
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200
    answer: bytes = b'{"results": [{"index": 0, "outcome": "accepted"}]}'


@pytest.fixture
def ingress() -> Iterator[Ingress]:
    recorder: Ingress

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            recorder.requests.append((self.path, dict(self.headers.items()), body))
            self.send_response(recorder.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(recorder.answer)))
            self.end_headers()
            self.wfile.write(recorder.answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder = Ingress(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield recorder
    server.shutdown()
    server.server_close()


NO_SECRETS = {"ONBOARDING_SEGMENT_SECRETS": None, "ONBOARDING_EVENTS_WEBHOOK_SECRETS": None}


def test_send_event_posts_a_segment_call_signed_with_the_first_secret(ingress: Ingress) -> None:
    result = CliRunner().invoke(
        app,
        [
            "send-event",
            "acme",
            "user_invited",
            "--property",
            "users=3",
            "--property",
            "plan=pro",
            "--property",
            "trial=false",
            "--property",
            "code=007",
            "--user",
            "u-1",
            "--url",
            ingress.url,
        ],
        env=NO_SECRETS | {"ONBOARDING_SEGMENT_SECRETS": "seg-new, seg-old"},
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"results": [{"index": 0, "outcome": "accepted"}]}
    [(path, headers, body)] = ingress.requests
    assert path == "/events"
    expected = hmac.new(b"seg-new", body, hashlib.sha1).hexdigest()
    assert headers["X-Signature"] == expected
    call = json.loads(body)
    assert call["type"] == "track"
    assert call["event"] == "user_invited"
    assert call["groupId"] == "acme"
    assert call["userId"] == "u-1"
    assert call["properties"] == {"users": 3, "plan": "pro", "trial": False, "code": "007"}
    assert uuid.UUID(call["messageId"])
    sent_at = datetime.fromisoformat(call["timestamp"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - sent_at) < timedelta(minutes=1)


def test_send_event_signs_with_standard_webhooks_without_a_segment_secret(
    ingress: Ingress,
) -> None:
    key = b"0123456789abcdef0123456789abcdef"
    secret = "whsec_" + base64.b64encode(key).decode()

    result = CliRunner().invoke(
        app,
        [
            "send-event",
            "acme",
            "--type",
            "identify",
            "-p",
            "seats=12",
            "--message-id",
            "m-42",
            "--url",
            ingress.url,
        ],
        env=NO_SECRETS | {"ONBOARDING_EVENTS_WEBHOOK_SECRETS": secret},
    )

    assert result.exit_code == 0, result.output
    [(_, headers, body)] = ingress.requests
    assert headers["webhook-id"] == "m-42"
    signed = f"m-42.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    call = json.loads(body)
    assert (call["type"], call["messageId"], call["traits"]) == ("identify", "m-42", {"seats": 12})
    assert "event" not in call


def test_send_event_shows_the_ingress_refusal_and_exits_1(ingress: Ingress) -> None:
    ingress.status = 401
    ingress.answer = b'{"detail": "X-Signature: does not match the body"}'

    result = CliRunner().invoke(
        app, ["send-event", "acme", "user_logged_in", "--url", ingress.url], env=NO_SECRETS
    )

    assert result.exit_code == 1
    assert "warning: neither ONBOARDING_SEGMENT_SECRETS" in result.stderr
    assert "the ingress answered 401 Unauthorized" in result.stderr
    assert "X-Signature: does not match the body" in result.stderr
    assert "X-Signature" not in ingress.requests[0][1]


def test_send_event_without_an_ingress_says_so() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    result = CliRunner().invoke(
        app, ["send-event", "acme", "user_logged_in", "--url", url], env=NO_SECRETS
    )

    assert result.exit_code == 1
    assert f"cannot reach the ingress at {url}; is `onboarding up` running?" in result.stderr


# --------------------------------------------------------------------------- send-deal

EXAMPLES = Path(__file__).parents[1] / "examples"
KEY = b"0123456789abcdef0123456789abcdef"
SECRETS = NO_SECRETS | {"ONBOARDING_WEBHOOK_SECRETS": "whsec_" + base64.b64encode(KEY).decode()}


def test_send_deal_posts_the_file_signed_and_can_close_it_now(ingress: Ingress) -> None:
    ingress.status, ingress.answer = 201, b'{"started": true}'
    deal = EXAMPLES / "deal.json"
    result = CliRunner().invoke(
        app,
        ["send-deal", str(deal), "--closed-now", "--webhook-id", "msg_1", "--url", ingress.url],
        env=SECRETS,
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"started": True}
    [(path, headers, body)] = ingress.requests
    assert path == "/webhooks/deals"
    signed = f"msg_1.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    assert (headers["webhook-id"], headers["webhook-signature"]) == ("msg_1", f"v1,{expected}")
    sent = json.loads(body)
    closed = datetime.fromisoformat(sent.pop("close_date"))
    assert abs(datetime.now(UTC) - closed) < timedelta(minutes=1)
    original = json.loads(deal.read_text())
    original.pop("close_date")
    assert sent == original


def test_send_deal_says_what_is_wrong_with_the_file_or_the_setup(
    ingress: Ingress, tmp_path: Path
) -> None:
    listed = tmp_path / "deals.json"
    listed.write_text("[]")
    cases = [
        (["send-deal", str(tmp_path / "none.json")], SECRETS, "cannot read"),
        (["send-deal", str(listed)], SECRETS, "must be one JSON object (a deal)"),
        (["send-deal", str(EXAMPLES / "deal.json")], NO_SECRETS, "ONBOARDING_WEBHOOK_SECRETS"),
    ]
    for args, env, message in cases:
        result = CliRunner().invoke(app, [*args, "--url", ingress.url], env=env)
        assert result.exit_code == 1, result.output
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert ingress.requests == []


def test_the_examples_are_valid_deals() -> None:
    ClosedWonDeal.model_validate(json.loads((EXAMPLES / "deal.json").read_text()))
    result = CliRunner().invoke(app, ["import", str(EXAMPLES / "deals.csv"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "valid 4 · rejected 0" in result.output
