"""Socket Mode: the same bot over an outbound WebSocket (``INSPECT_SLACK_APP_TOKEN``), so no public
URL is needed — the natural choice behind a VPN. Each envelope is acknowledged first, then handled
in the background, like the HTTP edge."""

from __future__ import annotations

import logging

from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.socket_mode.websockets import SocketModeClient
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.bot import SlackBot

log = logging.getLogger(__name__)


class SocketModeRunner:
    def __init__(self, *, bot: SlackBot, app_token: str, web_client: AsyncWebClient) -> None:
        self._bot = bot
        self._client = SocketModeClient(app_token=app_token, web_client=web_client, auto_reconnect_enabled=True)
        self._client.socket_mode_request_listeners.append(self._on_request)  # type: ignore[arg-type]

    async def start(self) -> None:
        await self._client.connect()

    async def _on_request(self, client: SocketModeClient, request: SocketModeRequest) -> None:
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        if request.type == "events_api":
            self._bot.spawn(self._bot.handle_event(request.payload))
        elif request.type == "interactive":
            self._bot.spawn(self._bot.handle_action(request.payload))

    async def close(self) -> None:
        await self._client.close()
