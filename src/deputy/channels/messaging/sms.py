"""Scaffold until this issue's channel work replaces it: sends nothing."""

from __future__ import annotations

from collections.abc import Mapping

from deputy.channels.base import DeliveryFailed
from deputy.domain.channels import KindConfig, Outbound


class SmsSender:
    async def send(
        self, config: KindConfig, secrets: Mapping[str, str], message: Outbound
    ) -> str | None:
        raise DeliveryFailed("this channel cannot send yet")
