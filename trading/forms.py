"""The Deploy form: how a completed training's best checkpoint trades (mode, feed, account, fill model,
speed). trading.services.deployment_create is the judge of the values; this form only reads what the
browser sends, asks for the live confirmation, and puts the service's refusals on the inputs they name.
"""
from django import forms

from common.errors import problems_of
from trading.models import Deployment

CONFIRM_LIVE = "I understand this sends real orders"
CONFIRM_LIVE_REQUIRED = "Live trading sends real orders to the exchange: tick “I understand this sends real orders”."


class DeployForm(forms.Form):
    session = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    mode = forms.ChoiceField(choices=Deployment.Mode.choices, initial=Deployment.Mode.PAPER,
                             help_text="Paper: a simulated broker. Live: real orders at the exchange account.")
    feed = forms.ChoiceField(choices=Deployment.FeedKind.choices, initial=Deployment.FeedKind.REPLAY)
    account = forms.ModelChoiceField(queryset=None, required=False, empty_label="— none —",
                                     help_text="One of your exchange accounts; live mode and a live feed need one.")
    fill_model = forms.ChoiceField(choices=Deployment.FillModel.choices, initial=Deployment.FillModel.CLOSE)
    bars_per_second = forms.FloatField(required=False, min_value=0,
                                       help_text="Replay speed; empty: as fast as possible.")
    confirm_live = forms.BooleanField(required=False, label=CONFIRM_LIVE)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = user.exchange_accounts.all()

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("mode") == Deployment.Mode.LIVE and not cleaned.get("confirm_live"):
            self.add_error("confirm_live", CONFIRM_LIVE_REQUIRED)
        return cleaned

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {"mode": data["mode"], "feed": data["feed"], "account": data["account"],
                "fill_model": data["fill_model"], "bars_per_second": data["bars_per_second"]}

    def add_service_error(self, error: Exception) -> None:
        """Put a refusal of deployment_create on the input it names (the form-wide list otherwise)."""
        for problem in problems_of(error):
            field = problem.loc[0] if problem.loc else None
            self.add_error(field if field in self.fields and field != "session" else None, problem.message)
