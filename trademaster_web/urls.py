from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from trademaster_web.api import api
from trademaster_web.views import dashboard_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    # Only login and logout: the rest of django.contrib.auth.urls (password reset) needs an email backend.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("strategies/", include("strategies.urls")),
    path("sessions/", include("sessions.urls")),
    path("", dashboard_view, name="dashboard"),
    path("", include("django_prometheus.urls")),  # /metrics
]
