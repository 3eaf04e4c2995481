from django.urls import path

from sessions import strategy_views, views

app_name = "sessions"

urlpatterns = [
    path("", views.session_list_view, name="list"),
    path("compare/", views.session_compare_view, name="compare"),
    path("<int:pk>/", views.session_detail_view, name="detail"),
    path("<int:pk>/pause/", views.session_pause_view, name="pause"),
    path("<int:pk>/resume/", views.session_resume_view, name="resume"),
    path("<int:pk>/stop/", views.session_stop_view, name="stop"),
    path("<int:pk>/backtest/", views.session_backtest_view, name="backtest"),
    path("<int:pk>/report/", views.session_report_view, name="report"),
]

# Under /strategies/, in the strategies namespace (see trademaster_web.urls).
strategy_urlpatterns = [
    path("<int:pk>/", strategy_views.strategy_detail_view, name="detail"),
    path("<int:pk>/train/", strategy_views.strategy_train_view, name="train"),
]
