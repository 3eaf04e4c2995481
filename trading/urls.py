from django.urls import path

from trading import risk_views, views

app_name = "deployments"

urlpatterns = [
    path("", views.deployment_list_view, name="list"),
    path("new", views.deployment_create_view, name="new"),
    path("<int:pk>/", views.deployment_detail_view, name="detail"),
    path("<int:pk>/pause/", views.deployment_pause_view, name="pause"),
    path("<int:pk>/resume/", views.deployment_resume_view, name="resume"),
    path("<int:pk>/stop/", views.deployment_stop_view, name="stop"),
    path("<int:pk>/risk/", risk_views.deployment_limits_view, name="risk_limits"),
    path("<int:pk>/kill-switch/", risk_views.deployment_trip_view, name="trip"),
    path("<int:pk>/kill-switch/lift/", risk_views.deployment_lift_view, name="lift"),
]
