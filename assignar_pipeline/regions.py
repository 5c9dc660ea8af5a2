"""Where Assignar lives for each region, and how the environment overrides it.

The real API has two regional deployments sharing one login server (OpenAPI `servers` and the
client-credentials `tokenUrl`). `ASSIGNAR_API_URL` and `ASSIGNAR_TOKEN_URL` point everything at
the local simulator instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

#: The one scope the token endpoint grants; it is validated against the account's API access.
SCOPE = "target-entity:b816a5d3-40c3-477f-a551-1d066d7211cc:api_access"

TOKEN_URL = "https://login.assignar.com/oauth2/token"  # noqa: S105 (a URL, not a secret)


class Region(StrEnum):
    NA = "na"  # North America / Europe
    AU = "au"  # Australia / New Zealand

    @property
    def label(self) -> str:
        return {Region.NA: "North America/Europe", Region.AU: "Australia/New Zealand"}[self]


API_URLS: Mapping[Region, str] = {
    Region.NA: "https://api.assignar.com/v2",
    Region.AU: "https://api.assignar.com.au/v2",
}


@dataclass(frozen=True)
class Endpoints:
    api_url: str
    token_url: str


def endpoints_for(region: Region | str, environ: Mapping[str, str] = os.environ) -> Endpoints:
    """The API and token URLs for `region`, unless the environment overrides them."""
    try:
        region = Region(region)
    except ValueError:
        choices = ", ".join(f"'{r.value}' ({r.label})" for r in Region)
        raise ValueError(f"Unknown Assignar region {region!r}: use one of {choices}.") from None
    return Endpoints(
        api_url=(environ.get("ASSIGNAR_API_URL") or API_URLS[region]).rstrip("/"),
        token_url=environ.get("ASSIGNAR_TOKEN_URL") or TOKEN_URL,
    )


class Secret:
    """A string that never shows itself in repr, str, logs or tracebacks; `reveal()` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple:
        # Refuse to travel by pickle (multiprocessing, run storage): resolve it where it is used.
        raise TypeError("Secret values are not picklable; pass the environment variable name.")
