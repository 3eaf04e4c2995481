from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from engine.data import DataError
from strategies.services import dataset_import
from trademaster_web.errors import Conflict


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
        except (DataError, Conflict) as error:
            raise CommandError(str(error)) from None
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self.stdout.write(
            f"Imported {dataset.name!r}: {dataset.n_bars} bars ({dataset.frequency}) of "
            f"{', '.join(dataset.tickers)}, {dataset.start_date} to {dataset.end_date}, into {dataset.path}"
        )
