from django.contrib import admin

from strategies.models import Dataset, Strategy


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "frequency", "tickers", "start_date", "end_date", "n_bars", "created_at")
    list_filter = ("frequency",)
    search_fields = ("name", "path", "checksum")
    readonly_fields = ("created_at",)


@admin.register(Strategy)
class StrategyAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "task", "agent", "dataset", "updated_at")
    list_filter = ("task", "agent", "dataset")
    search_fields = ("name", "description", "owner__username")
    list_select_related = ("owner", "dataset")
    raw_id_fields = ("owner",)
    readonly_fields = ("created_at", "updated_at")
