"""Where the AccessKey comes from.

Production uses Alibaba's own default credential chain (``alibabacloud-credentials``):
environment variables, the CLI profile, an ECS RAM role, an OIDC role (RRSA), with
temporary credentials refreshed by the library. Tests and demo mode use a fixed key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


class CredentialSource(Protocol):
    async def get(self) -> Credential: ...


@dataclass(frozen=True)
class StaticCredentials:
    credential: Credential

    async def get(self) -> Credential:
        return self.credential


class DefaultCredentialChain:
    """Alibaba's default chain; the library caches and refreshes temporary credentials."""

    def __init__(self) -> None:
        from alibabacloud_credentials.client import Client

        self._client = Client()

    async def get(self) -> Credential:
        model = await self._client.get_credential_async()
        return Credential(
            access_key_id=model.access_key_id,
            access_key_secret=model.access_key_secret,
            security_token=model.security_token or None,
        )
