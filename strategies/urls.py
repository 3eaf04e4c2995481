from django.urls import path

from strategies import views

app_name = "strategies"

urlpatterns = [
    path("", views.strategy_list_view, name="list"),
    path("new/", views.strategy_create_view, name="create"),
    path("<int:pk>/", views.strategy_detail_view, name="detail"),
    path("<int:pk>/edit/", views.strategy_edit_view, name="edit"),
    path("<int:pk>/train/", views.strategy_train_view, name="train"),
    path("<int:pk>/delete/", views.strategy_delete_view, name="delete"),
]
