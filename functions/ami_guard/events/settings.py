"""The parameters of the newer EC2 and Recycle Bin calls, however CloudTrail recorded them. Pure.

Newer EC2 APIs record their request either flat (`{"State": "unblocked"}`) or wrapped in an object named after the
request (`{"EnableSnapshotBlockPublicAccessRequest": {"State": "unblocked"}}`), and their response likewise
(`...Response`); Recycle Bin records lowerCamelCase keys (`identifier`, `resourceType`). Keys are matched without
regard to case. A value of the wrong type reads as absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ami_guard.events.fields import mapping as _map
from ami_guard.events.fields import string as _str

if TYPE_CHECKING:
    from ami_guard.events.calls import ApiCall


def _levels(part: Mapping[str, Any], wrapper: str) -> tuple[Mapping[str, Any], ...]:
    wrapped = next((value for key, value in part.items() if key.lower() == wrapper.lower()), None)
    return (part, _map(wrapped))


def _find(levels: tuple[Mapping[str, Any], ...], names: tuple[str, ...]) -> Any:
    wanted = {name.lower() for name in names}
    for level in levels:
        for key, value in level.items():
            if isinstance(key, str) and key.lower() in wanted and value is not None:
                return value
    return None


def request_value(call: ApiCall, *names: str) -> Any:
    """The first of `names` the request carries, flat or inside `<EventName>Request`; None when absent."""
    return _find(_levels(call.request, f"{call.event_name}Request"), names)


def response_value(call: ApiCall, *names: str) -> Any:
    """The first of `names` the response carries, flat or inside `<EventName>Response`; None when absent."""
    return _find(_levels(call.response, f"{call.event_name}Response"), names)


def text(call: ApiCall, *names: str) -> str | None:
    """A string parameter, from the request, else the response."""
    return _str(request_value(call, *names)) or _str(response_value(call, *names))
