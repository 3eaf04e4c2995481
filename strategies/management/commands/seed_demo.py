from django.core.management.base import BaseCommand, CommandError

from common.commands import refused
from common.errors import REFUSALS
from strategies.demo_data import ROLES, DemoDataUnavailable, SeedResult, demo_seed


class Command(BaseCommand):
    help = (
        "Create the demo: a user per role (groups quant, operator, admin), the S&P 500 and synthetic "
        "datasets, and strategies with the quick preset. Safe to run again: only what is missing is "
        "created. New users get a random password, printed once, or "
        + ", ".join(role.password_env for role in ROLES)
        + " when set."
    )

    def handle(self, *args, **options):
        try:
            result = demo_seed()
        except DemoDataUnavailable as error:
            raise CommandError(str(error)) from None
        except REFUSALS as error:
            raise refused(error) from None
        for line in _report(result):
            self.stdout.write(line)


def _report(result: SeedResult) -> list[str]:
    lines = []
    for new in result.new_users:
        flags = "".join([", staff" if new.role.is_staff else "", ", superuser" if new.role.is_superuser else ""])
        password = (f"password from {new.role.password_env}" if new.password is None
                    else f"password {new.password}")
        lines.append(f"Created user {new.user.get_username()!r} (group {new.role.name}{flags}), {password}")
    lines += [f"User {name!r} exists: left as it is" for name in result.existing_users]
    for dataset in result.new_datasets:
        lines.append(
            f"Imported dataset {dataset.name!r}: {dataset.n_bars} bars of {', '.join(dataset.tickers)}, "
            f"{dataset.start_date} to {dataset.end_date}"
        )
    lines += [f"Dataset {dataset.name!r} exists" for dataset in result.existing_datasets]
    for strategy in result.new_strategies:
        lines.append(f"Created strategy {strategy.name!r} ({strategy.task}, {strategy.agent}) for {strategy.owner}")
    lines += [f"Strategy {strategy.name!r} exists" for strategy in result.existing_strategies]
    if any(new.password for new in result.new_users):
        lines.append("Note the passwords now: they are not shown again.")
    return lines
