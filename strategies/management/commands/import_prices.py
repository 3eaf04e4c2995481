from django.core.management.base import BaseCommand

from common.commands import refused
from common.errors import REFUSALS
from strategies.services import dataset_import


class Command(BaseCommand):
    help = (
        "Import a CSV file of prices (or a folder of CSV files read together) as a dataset: validate it "
        "with the engine's reader and copy it into TRADEMASTER['DATA_DIR']."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="PATH", help="A CSV file, or a folder of CSV files")
        parser.add_argument("--name", required=True, help="The dataset's name (unique)")

    def handle(self, *args, path: str, name: str, **options):
        try:
            dataset = dataset_import(path=path, name=name)
        except REFUSALS as error:
            raise refused(error) from None
        self.stdout.write(
            f"Imported {dataset.name!r}: {dataset.n_bars} bars ({dataset.frequency}) of "
            f"{', '.join(dataset.tickers)}, {dataset.start_date} to {dataset.end_date}, into {dataset.path}"
        )
