"""AWS answered in process by botocore's Stubber, for every client that any code creates after `install()`.

Nothing here talks to the network. botocore's `creating-client-class` event gives each new client class a base
that activates a Stubber on the client as it is constructed; a `provide-client-params` hook, the first event of
every call, records the call and queues the canned answer for it, and the Stubber answers it.
Used by the benchmark's child processes in both environments (ours and Cloud Custodian's): stdlib and botocore
only, imported after the child starts its clock, so that both the floor and the function pay for it alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Answer = Callable[[Mapping[str, Any]], dict[str, Any]]
"""Request parameters -> a fresh response dict (fresh: callers may annotate what they receive)."""

READ_PREFIXES = ("Describe", "Get", "List", "Query", "Scan", "BatchGet", "Lookup")
"""Operations that read, by name; every other operation writes (PutItem, Publish, ModifyImageAttribute...)."""


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    key: str = field(default="", compare=False)
    """The access key id of the credentials the client signs with: whose rights the call uses."""

    def __str__(self) -> str:
        return f"{self.service}:{self.operation}"


@dataclass
class CallLog:
    answers: Mapping[tuple[str, str], Answer]
    calls: list[Call] = field(default_factory=list)
    clients: list[str] = field(default_factory=list)

    def take(self) -> list[Call]:
        """The calls recorded since the last take()."""
        taken, self.calls = self.calls, []
        return taken


def empty(_: Mapping[str, Any]) -> dict[str, Any]:
    return {}


def _access_key(client: Any) -> str:
    """The access key id the client signs with ("" for an unsigned client)."""
    credentials = client._get_credentials()
    return "" if credentials is None else str(credentials.access_key)


def install(answers: Mapping[tuple[str, str], Answer]) -> CallLog:
    """From now on every botocore session's clients are stubbed; (service, Operation) -> answer, else {}."""
    from botocore import handlers
    from botocore.stub import Stubber

    log = CallLog(answers)

    class CachingStubber(Stubber):  # type: ignore[misc]
        """Validates each operation's canned answer against the model once, not on every call."""

        validated: set[str] = set()

        def _validate_operation_response(self, operation_name: str, service_response: Any) -> None:
            if operation_name not in self.validated:
                super()._validate_operation_response(operation_name, service_response)
                self.validated.add(operation_name)

    class StubbedClient:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            stubber = CachingStubber(self)
            stubber.activate()
            service = self.meta.service_model.service_name  # type: ignore[attr-defined]
            methods = {op: py for py, op in self.meta.method_to_api_mapping.items()}  # type: ignore[attr-defined]
            log.clients.append(service)

            def answer(params: Mapping[str, Any], model: Any, **_: Any) -> None:
                log.calls.append(Call(service, model.name, _access_key(self)))
                stubber.add_response(methods[model.name], log.answers.get((service, model.name), empty)(params))

            self.meta.events.register_first("provide-client-params.*.*", answer)  # type: ignore[attr-defined]

    def add_stubber(base_classes: list[type], **_: Any) -> None:
        base_classes.insert(0, StubbedClient)

    handlers.BUILTIN_HANDLERS.append(("creating-client-class", add_stubber))
    return log
