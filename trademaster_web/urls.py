from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from sessions import urls as session_urls
from strategies import urls as strategy_urls
from trademaster_web.api import api
from trademaster_web.metrics import metrics_view
from trademaster_web.views import dashboard_view

# /strategies/: the strategies app's pages, and a strategy's own page with its Train action, which
# are the sessions app's (they read and write sessions): one namespace, two apps, layered.
strategy_pages = (strategy_urls.urlpatterns + session_urls.strategy_urlpatterns, strategy_urls.app_name)

handler400 = "trademaster_web.error_pages.bad_request"
handler403 = "trademaster_web.error_pages.forbidden"
handler404 = "trademaster_web.error_pages.not_found"
handler500 = "trademaster_web.error_pages.server_error"

urlpatterns = [
    # API tokens moved from the risk app to accounts; an operator's bookmark still finds them.
    path("admin/risk/apitoken/",
         RedirectView.as_view(pattern_name="admin:accounts_apitoken_changelist", permanent=True)),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    # Only login and logout: the rest of django.contrib.auth.urls (password reset) needs an email backend.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("strategies/", include(strategy_pages)),
    path("sessions/", include("sessions.urls")),
    path("deployments/", include("trading.urls")),
    path("risk/", include("risk.urls")),
    path("", dashboard_view, name="dashboard"),
    path("metrics", metrics_view, name="prometheus-django-metrics"),
    # Browsers ask for /favicon.ico whatever the page says.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
]
