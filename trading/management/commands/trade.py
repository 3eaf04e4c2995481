import logging
import signal
import threading

from django.core.management.base import BaseCommand

from trading.process import TradingProcess


class Command(BaseCommand):
    help = (
        "Run the trading process: every active deployment it can hold, bar by bar, until SIGTERM or "
        "Ctrl-C. Run one or more (on one machine or several sharing PostgreSQL): they split the "
        "deployments between them, and take over those of one that dies."
    )

    def add_arguments(self, parser):
        parser.add_argument("--owner", help="this process's name in the deployments' leases (default: random)")

    def handle(self, *args, owner: str | None = None, **options):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        process = TradingProcess(owner=owner)

        def ready():
            # Said on stdout once the process serves, for whoever started it (make run, the tests).
            self.stdout.write(f"trading process {process.owner} ready")
            self.stdout.flush()

        process.run(stop, on_ready=ready)
