"""One way to reach Temporal for every part of the service (CLI, worker, ingress, tests).

Connection settings come from the SDK's own environment configuration
(`temporalio.envconfig`): `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`,
`TEMPORAL_TLS*`, `TEMPORAL_PROFILE` / `TEMPORAL_CONFIG_FILE`, so the same code runs on
the local dev server, a self-hosted cluster or Temporal Cloud. Without any of them it
talks to the local dev server on localhost:7233, namespace `default`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import temporalio.client
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)
from temporalio.envconfig import ClientConfig
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from activities.codec import CodecSettings, EncryptionCodec
from activities.converter import CONVERTER, ReferencingPayloadConverter
from activities.pinning import PlaybookContentCodec
from activities.settings import StoreSettings

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"


class ConnectError(RuntimeError):
    """Temporal could not be reached; the message names the address tried."""

    def __init__(self, address: str, namespace: str, cause: BaseException) -> None:
        self.address = address
        self.namespace = namespace
        detail = str(cause).removeprefix("Failed client connect: ")
        super().__init__(
            f"cannot reach Temporal at {address} (namespace {namespace}): {detail}. "
            "Is the server running (`onboarding up`)? Set TEMPORAL_ADDRESS to use another."
        )


def connect_config(address: str | None = None, namespace: str | None = None) -> dict[str, Any]:
    """Keyword arguments for `Client.connect`: the env config, then defaults, then overrides."""
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    config.setdefault("target_host", DEFAULT_ADDRESS)
    config.setdefault("namespace", DEFAULT_NAMESPACE)
    if address:
        config["target_host"] = address
    if namespace:
        config["namespace"] = namespace
    return config


def namespace() -> str:
    """The namespace the environment selects (`default` when none is set)."""
    return str(connect_config()["namespace"])


class _Codecs(PayloadCodec):
    """Codecs in turn: encoding by the first, then the next; decoding the other way."""

    def __init__(self, *codecs: PayloadCodec) -> None:
        self._codecs = codecs

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        for codec in self._codecs:
            payloads = await codec.encode(payloads)
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        for codec in reversed(self._codecs):
            payloads = await codec.decode(payloads)
        return list(payloads)


def data_converter(
    settings: CodecSettings | None = None, *, records_url: str | None = None
) -> DataConverter:
    """Pydantic JSON, pinned playbooks by reference, their content in the records store at
    `records_url` (default `ONBOARDING_RECORDS_URL`; activities/pinning.py); encrypted when
    `ONBOARDING_CODEC_KEYS` is set (activities/codec.py): references are found before
    encryption and after decryption.

    With encryption, failure messages and stack traces are encrypted too: an SMTP error or
    a rejected update can quote a contact's address."""
    pinning = PlaybookContentCodec(records_url or StoreSettings().records_url)
    encryption = EncryptionCodec.from_settings(settings or CodecSettings())
    referencing = dataclasses.replace(
        CONVERTER, payload_converter_class=ReferencingPayloadConverter
    )
    if encryption is None:
        return dataclasses.replace(referencing, payload_codec=pinning)
    return dataclasses.replace(
        referencing,
        payload_codec=_Codecs(pinning, encryption),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def metrics_runtime(port: int) -> Runtime:
    """An SDK runtime that serves its metrics (Prometheus) on 127.0.0.1:`port`."""
    bind = f"127.0.0.1:{port}"
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind)))


async def connect(
    address: str | None = None,
    namespace: str | None = None,
    *,
    runtime: Runtime | None = None,
    records_url: str | None = None,
) -> temporalio.client.Client:
    """A client with the service's data converter (pinned playbooks' content in the
    records store at `records_url`, default `ONBOARDING_RECORDS_URL`); raises
    `ConnectError` when unreachable."""
    config = connect_config(address, namespace)
    converter = data_converter(records_url=records_url)
    try:
        return await temporalio.client.Client.connect(
            **config, data_converter=converter, runtime=runtime
        )
    except RuntimeError as exc:
        raise ConnectError(config["target_host"], config["namespace"], exc) from exc
