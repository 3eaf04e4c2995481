"""The pages' forms: a scope's limits, and a kill switch's trip (with its confirmation).

risk.services is the judge of limits (the ceiling) and of who may set them or trip a switch; these
forms only read what the browser sends, check each limit as risk.limits.Limits would, and put the
services' refusals on the inputs they name.
"""
from __future__ import annotations

from django import forms

from common.errors import problems_of
from risk.limits import BREACH_LEVELS, COUNT_FIELDS, POSITIVE_FIELDS, WEEKDAY_NAMES, Limits, TradingHours
from risk.models import KillLevelName
from risk.presenters import label
from risk.schemas import MAX_AMOUNT, MAX_COUNT

CONFIRM_TRIP = "I understand this stops trading until someone lifts it"
CONFIRM_TRIP_REQUIRED = "Tripping a kill switch stops trading: tick “{label}”.".format(label=CONFIRM_TRIP)
HOURS_FIELDS = ("hours_start", "hours_end", "hours_weekdays")
# A limit the services name, and the input it is on.
INPUT_OF = {"trading_hours": "hours_start"}
REASON_LENGTH = 500


def _number(name: str) -> forms.Field:
    if name in COUNT_FIELDS:
        return forms.IntegerField(required=False, label=label(name), min_value=1, max_value=MAX_COUNT)
    upper = POSITIVE_FIELDS[name] or MAX_AMOUNT
    # Above 0 is Limits' own check (clean): a FloatField knows no strict bound.
    return forms.FloatField(required=False, label=label(name), max_value=upper,
                            help_text=f"Above 0, at most {upper:,g}; empty: not set.")


class LimitsForm(forms.Form):
    """A scope's limits; an empty input is a limit not set. `limits` (a Limits) once valid."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in (*POSITIVE_FIELDS, *COUNT_FIELDS):
            self.fields[name] = _number(name)
        self.fields["allowed_symbols"] = forms.CharField(
            required=False, label=label("allowed_symbols"), max_length=5000,
            help_text="Separated by commas or spaces; empty: any symbol.")
        self.fields["hours_start"] = forms.CharField(required=False, max_length=5, label="Trading from",
                                                     help_text="HH:MM UTC; empty (all three): any time.")
        self.fields["hours_end"] = forms.CharField(required=False, max_length=5, label="Trading until",
                                                   help_text="HH:MM UTC, after the start; 24:00 is the day's end.")
        self.fields["hours_weekdays"] = forms.TypedMultipleChoiceField(
            required=False, coerce=int, label="Trading on", choices=list(enumerate(WEEKDAY_NAMES)),
            widget=forms.CheckboxSelectMultiple, help_text="None ticked: every day.")
        self.fields["breach_level"] = forms.ChoiceField(
            label=label("breach_level"), initial="halt", choices=[(level, level) for level in BREACH_LEVELS],
            help_text="The kill switch a breached daily-loss or drawdown limit trips.")
        self.limits: Limits | None = None

    @staticmethod
    def initial_of(limits: Limits) -> dict:
        """The inputs' values for `limits`."""
        data = {name: getattr(limits, name) for name in (*POSITIVE_FIELDS, *COUNT_FIELDS)}
        data["breach_level"] = limits.breach_level
        if limits.allowed_symbols is not None:
            data["allowed_symbols"] = ", ".join(sorted(limits.allowed_symbols))
        if limits.trading_hours is not None:
            hours = limits.trading_hours
            data.update(hours_start=hours.start, hours_end=hours.end, hours_weekdays=sorted(hours.weekdays))
        return data

    def clean(self):
        cleaned = super().clean()
        values = {name: cleaned.get(name) for name in (*POSITIVE_FIELDS, *COUNT_FIELDS, "breach_level")}
        symbols = cleaned.get("allowed_symbols") or ""
        values["allowed_symbols"] = frozenset(symbols.replace(",", " ").split()) or None
        # Each limit alone, so each refusal lands on its own input, in Limits' words.
        for name, value in values.items():
            if name in self.errors or value is None:
                continue
            try:
                Limits(**{name: value})
            except ValueError as error:
                self.add_error(name, str(error))
        values["trading_hours"] = self._hours(cleaned)
        if not self.errors:
            self.limits = Limits(**values)
        return cleaned

    def _hours(self, cleaned: dict) -> TradingHours | None:
        start, end, weekdays = (cleaned.get(name) for name in HOURS_FIELDS)
        if not (start or end or weekdays) or any(name in self.errors for name in HOURS_FIELDS):
            return None
        try:
            return TradingHours(start or "00:00", end or "24:00", frozenset(weekdays or range(7)))
        except ValueError as error:
            self.add_error("hours_start", str(error))
            return None

    def add_service_error(self, error: Exception) -> None:
        """Put a refusal of limits_set on the input it names (the form-wide list otherwise)."""
        for problem in problems_of(error):
            name = problem.loc[0] if problem.loc else None
            name = INPUT_OF.get(name, name)
            self.add_error(name if name in self.fields else None, problem.message)


class TripForm(forms.Form):
    """Trip a kill switch at a level, ticking the confirmation."""

    level = forms.ChoiceField(choices=KillLevelName.choices, widget=forms.RadioSelect, initial=KillLevelName.PAUSE)
    reason = forms.CharField(required=False, max_length=REASON_LENGTH, help_text='Empty: "tripped at <level>".')
    confirm = forms.BooleanField(required=False, label=CONFIRM_TRIP)

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("confirm"):
            self.add_error("confirm", CONFIRM_TRIP_REQUIRED)
        return cleaned
