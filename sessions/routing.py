from django.urls import path

from sessions.consumers import SessionStreamConsumer

websocket_urlpatterns = [
    path("ws/sessions/<int:pk>/", SessionStreamConsumer.as_asgi(), name="session_stream"),
]
