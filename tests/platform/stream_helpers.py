"""Helpers of the WebSocket stream tests: a browser's handshake, a connected client, a scenario run."""
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from trademaster_web.asgi import application

WAIT = 5  # seconds: the longest any single message may take


def run(scenario):
    async_to_sync(scenario)()


def cookie_of(user) -> list[tuple[bytes, bytes]]:
    """The handshake header of a browser logged in as `user`."""
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return [(b"cookie", f"{name}={client.cookies[name].value}".encode())]


async def opened(path: str, headers) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=WAIT)
    assert connected
    return communicator
