from django.urls import path

from strategies import views

app_name = "strategies"

# A strategy's own page and its Train action are the sessions app's (sessions.urls.strategy_urlpatterns);
# trademaster_web.urls puts them in this namespace.
urlpatterns = [
    path("", views.strategy_list_view, name="list"),
    path("new/", views.strategy_create_view, name="create"),
    path("<int:pk>/edit/", views.strategy_edit_view, name="edit"),
    path("<int:pk>/delete/", views.strategy_delete_view, name="delete"),
]
