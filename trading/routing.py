from django.urls import path

from trading.consumers import DeploymentStreamConsumer

websocket_urlpatterns = [
    path("ws/deployments/<int:pk>/", DeploymentStreamConsumer.as_asgi(), name="deployment_stream"),
]
