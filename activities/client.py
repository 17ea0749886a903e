"""One way to reach Temporal for every part of the service (CLI, worker, ingress, tests).

Connection settings come from the SDK's own environment configuration
(`temporalio.envconfig`): `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`,
`TEMPORAL_TLS*`, `TEMPORAL_PROFILE` / `TEMPORAL_CONFIG_FILE`, so the same code runs on
the local dev server, a self-hosted cluster or Temporal Cloud. Without any of them it
talks to the local dev server on localhost:7233, namespace `default`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import temporalio.client
from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)
from temporalio.envconfig import ClientConfig
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from activities.codec import CodecSettings, EncryptionCodec

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


def _type_adapter(type_hint: Any) -> TypeAdapter[Any]:
    return TypeAdapter(type_hint)


# One cache for the process: the SDK's converter keeps its own per converter, and the
# worker makes a converter per workflow, so each cached onboarding held its own adapters
# (about 6 KB) and each new one built them again.
_shared_type_adapter = functools.lru_cache(maxsize=1024)(_type_adapter)


class _JsonConverter(PydanticJSONPlainPayloadConverter):
    """The SDK's pydantic JSON converter, with the process's `TypeAdapter`s."""

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        hint = Any if type_hint is None else type_hint
        try:
            adapter = _shared_type_adapter(hint)
        except TypeError:  # an unhashable hint: not cached
            adapter = TypeAdapter(hint)
        return adapter.validate_json(payload.data)


class PayloadConverter(CompositePayloadConverter):
    """The SDK's `PydanticPayloadConverter` (JSON through pydantic), sharing the
    process's `TypeAdapter`s between the converters the worker makes per workflow."""

    def __init__(self) -> None:
        super().__init__(
            *(
                _JsonConverter() if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


CONVERTER = DataConverter(payload_converter_class=PayloadConverter)


def data_converter(settings: CodecSettings | None = None) -> DataConverter:
    """Pydantic JSON; encrypted when `ONBOARDING_CODEC_KEYS` is set (see activities/codec.py).

    With encryption, failure messages and stack traces are encrypted too: an SMTP error or
    a rejected update can quote a contact's address."""
    codec = EncryptionCodec.from_settings(settings or CodecSettings())
    if codec is None:
        return CONVERTER
    return dataclasses.replace(
        CONVERTER,
        payload_codec=codec,
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
) -> temporalio.client.Client:
    """A client with the service's data converter; raises `ConnectError` when unreachable."""
    config = connect_config(address, namespace)
    converter = data_converter()
    try:
        return await temporalio.client.Client.connect(
            **config, data_converter=converter, runtime=runtime
        )
    except RuntimeError as exc:
        raise ConnectError(config["target_host"], config["namespace"], exc) from exc
