from django.urls import path

from risk import views

app_name = "risk"

# A deployment's limits and kill switch are on its pages (trading.risk_views, under /deployments/).
urlpatterns = [
    path("limits/", views.user_limits_view, name="limits"),
    path("limits/system/", views.system_limits_view, name="system_limits"),
    path("limits/strategies/<int:pk>/", views.strategy_limits_view, name="strategy_limits"),
    path("kill-switch/", views.kill_switch_view, name="kill_switch"),
    path("kill-switch/lift/", views.kill_switch_lift_view, name="kill_switch_lift"),
]
