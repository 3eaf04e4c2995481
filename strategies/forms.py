"""The strategy form: name, task, agent, dataset and preset, then one input per parameter of the
engine's config sections for that (task, agent), built from config_schema.

The engine is the one judge of the values (strategies.config -> pydantic): this form only turns what
the browser sends into Python values, and puts the engine's errors back on the inputs they are
about. The bounds are shown (help text, and min/max for the browser) but not checked twice here.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError

from common.errors import REFUSALS, problems_of
from engine.agents import agents_for
from engine.config import TASKS
from engine.tasks import TASK_SPECS
from strategies.config import PRESETS, config_build, config_check_runnable, config_schema, config_sections, deep_merge
from strategies.models import Strategy
from strategies.selectors import dataset_list

# The sections a person tunes on the page; "split" keeps its stored (or default) value.
FORM_SECTIONS = {"env": "Environment", "agent_params": "Agent", "trainer": "Trainer"}
# Input names are "<section>__<parameter>": unique across sections, and safe in ids and CSS.
SEP = "__"
KEEP_VALUES = ""  # the edit form's preset choice: keep the strategy's current values
RELOAD = "_reload"  # the submit button that reloads the form for another task, agent or preset
NOT_A_NUMBER = "{item!r} is not {kind}"
NO_DATASETS = "No dataset yet: import one with `manage.py import_prices` first."

_SCALARS = {"integer": int, "number": float, "string": str}
_KINDS = {"integer": "an integer", "number": "a number", "string": "text"}


def pair_from(values: Mapping, *, task: str = TASKS[0], agent: str = "") -> tuple[str, str]:
    """The (task, agent) the form is built for: the submitted pair when the engine has it, else the
    given default task and its first agent. An agent the task has no use for falls back the same
    way; a bound form still reports it, as the agent input's choices no longer hold it."""
    task = values.get("task") or task
    if task not in TASKS:
        task = TASKS[0]
    agents = agents_for(task)
    agent = values.get("agent") or agent
    return task, agent if agent in agents else agents[0]


class ListField(forms.CharField):
    """A list of numbers or words typed as "64, 64"."""

    def __init__(self, *, item_type: str, **kwargs):
        self.item_type = item_type
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, (list, tuple)):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        if text in self.empty_values:
            return None
        convert = _SCALARS[self.item_type]
        items = []
        for item in (part.strip() for part in text.split(",")):
            try:
                items.append(convert(item))
            except ValueError:
                raise DjangoValidationError(NOT_A_NUMBER.format(item=item, kind=_KINDS[self.item_type])) from None
        return items


class NumberField(forms.FloatField):
    """A float input that leaves "inf" and "nan" to the engine, which says "must be a finite number"
    of them, as it does to the API (Django's own check would say "Enter a number.")."""

    def validate(self, value):
        forms.Field.validate(self, value)


class NullableCharField(forms.CharField):
    def to_python(self, value):
        return super().to_python(value) or None


def _bounds(prop: Mapping) -> tuple[str, dict]:
    """The bounds as help text ("≥ 0, < 1") and as the browser's min/max (inclusive ones only)."""
    words, attrs = [], {}
    for key, sign, attr in (("minimum", "≥", "min"), ("exclusiveMinimum", ">", None),
                            ("maximum", "≤", "max"), ("exclusiveMaximum", "<", None)):
        if key in prop:
            words.append(f"{sign} {prop[key]}")
            if attr:
                attrs[attr] = prop[key]
    return ", ".join(words), attrs


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def config_field(prop: Mapping) -> forms.Field:
    """The input of one parameter, from its JSON schema (type, default, bounds, description).

    X-or-null parameters ("anyOf": [X, null]) may be left blank for None; anything the inputs below
    do not cover is typed as JSON, so a new kind of parameter in the engine still gets an input.
    """
    options = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
    nullable = len(options) < len(prop.get("anyOf", [prop]))
    inner = options[0] if len(options) == 1 else {}
    bounds, attrs = _bounds(inner)
    description = prop.get("description", "").strip()
    help_parts = [description if not description or description.endswith((".", "?", "!")) else f"{description}."]
    if "default" in prop:
        help_parts.append(f"Default: {_shown(prop['default'])}.")
    if bounds:
        help_parts.append(f"Range: {bounds}.")
    if nullable:
        help_parts.append("Blank: none.")
    common = {"label": prop.get("title"), "help_text": " ".join(p for p in help_parts if p),
              "required": not nullable}
    kind = inner.get("type")
    if "enum" in inner:
        choices = [(v, v) for v in inner["enum"]]
        return forms.ChoiceField(choices=([("", "none")] if nullable else []) + choices, **common)
    if kind == "boolean":
        return forms.BooleanField(**{**common, "required": False})
    if kind == "integer":
        return forms.IntegerField(widget=forms.NumberInput(attrs=attrs), **common)
    if kind == "number":
        return NumberField(widget=forms.NumberInput(attrs={"step": "any", **attrs}), **common)
    if kind == "string":
        field = NullableCharField if nullable else forms.CharField
        return field(**common)
    if kind == "array" and inner.get("items", {}).get("type") in _SCALARS:
        return ListField(item_type=inner["items"]["type"], **common)
    return forms.JSONField(**common)


class StrategyForm(forms.Form):
    """Build with strategy_form(); `strategy` is the one being edited (None when creating)."""

    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    task = forms.ChoiceField(choices=Strategy.Task.choices)
    agent = forms.ChoiceField(help_text="The engine agents that do the chosen task.")
    dataset = forms.ModelChoiceField(queryset=dataset_list(), empty_label=None)
    preset = forms.ChoiceField(
        required=False,
        help_text="Starting values for the trainer: quick (a first look in minutes), default, thorough.",
    )

    def __init__(self, data=None, *, task: str, agent: str, config: Mapping | None, strategy=None, **kwargs):
        super().__init__(data, **kwargs)
        self.strategy = strategy
        self.pair = (task, agent)
        self.fields["agent"].choices = [(a, a) for a in agents_for(task)]
        self.fields["dataset"].queryset = dataset_list()
        presets = [(p, p) for p in PRESETS]
        self.fields["preset"].choices = ([(KEEP_VALUES, "keep current values")] if strategy else []) + presets
        if not self.fields["dataset"].queryset.exists():
            self.fields["dataset"].help_text = NO_DATASETS

        schema = config_schema(task=task, agent=agent)
        self._config_inputs: dict[str, tuple[str, str]] = {}
        self.section_names: dict[str, list[str]] = {}
        for section in FORM_SECTIONS:
            names = []
            for key, prop in schema["sections"][section].get("properties", {}).items():
                name = f"{section}{SEP}{key}"
                self.fields[name] = config_field(prop)
                if config is not None and key in config.get(section, {}):
                    self.initial[name] = config[section][key]
                self._config_inputs[name] = (section, key)
                names.append(name)
            self.section_names[section] = names

    @property
    def config_sections(self) -> list[tuple[str, list]]:
        """(legend, bound fields) per section, in the template's order."""
        return [(legend, [self[name] for name in self.section_names[section]])
                for section, legend in FORM_SECTIONS.items()]

    @property
    def base_fields_bound(self) -> list:
        return [self[name] for name in ("name", "description", "task", "agent", "dataset", "preset")]

    def params(self, *, parsed_only: bool = False) -> dict:
        """The config sections to validate and save, from the cleaned inputs (with `parsed_only`, of
        those that could be read)."""
        params: dict[str, dict] = {section: {} for section in FORM_SECTIONS}
        for name, (section, key) in self._config_inputs.items():
            if name in self.cleaned_data or not parsed_only:
                params[section][key] = self.cleaned_data[name]
        if self.strategy is not None and "split" in self.strategy.config:
            # A new task or agent starts the config over (strategy_update); the split is about the
            # dataset, not the pair, so it is carried across.
            params["split"] = self.strategy.config["split"]
        return params

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {"name": data["name"], "description": data["description"], "task": data["task"],
                "agent": data["agent"], "dataset": data["dataset"], "params": self.params()}

    def check_config(self) -> None:
        """When some inputs could not be read (a list typed as "64, x"), ask the engine about all the
        others anyway, so that the page shows every problem of every section in one round."""
        data = self.cleaned_data
        if any(key not in data for key in ("task", "agent", "dataset")):
            return
        params = self.params(parsed_only=True)
        try:
            config = config_build(task=data["task"], agent=data["agent"], dataset=data["dataset"], params=params)
            config_check_runnable(config, data["dataset"])
        except REFUSALS as error:
            for problem in problems_of(error):
                if self._input_of(problem.loc) not in self.errors:
                    self._add_at(problem.loc, problem.message)

    def add_service_error(self, error: Exception) -> None:
        """Put what strategy_create / strategy_update refused (common.errors) on the inputs it is about."""
        for problem in problems_of(error):
            self._add_at(problem.loc, problem.message)

    def _input_of(self, loc: tuple) -> str | None:
        """The input a problem at `loc` is about; None for the form as a whole."""
        if len(loc) >= 2 and f"{loc[0]}{SEP}{loc[1]}" in self.fields:
            return f"{loc[0]}{SEP}{loc[1]}"
        if loc and loc[0] in self.fields:
            return loc[0]
        return None

    def _add_at(self, loc: tuple, message: str) -> None:
        if self._input_of(loc) is not None:
            self.add_error(self._input_of(loc), message)
        else:
            where = ".".join(str(part) for part in loc if part != "__all__")
            self.add_error(None, f"{where}: {message}" if where else message)


def strategy_form(*, data=None, source: Mapping | None = None, strategy: Strategy | None = None) -> StrategyForm:
    """The form to show or validate.

    data: a submitted form to validate (bound), built for the pair it names.
    source: values to start an unbound form from (GET parameters, or a reloading POST): its name,
        description, dataset, task, agent and preset. The parameters start from the pair's defaults
        with the preset on top, except when editing with the strategy's own pair and "keep current
        values", which shows the stored config.
    """
    if data is not None:
        task, agent = pair_from(data, task=strategy.task if strategy else TASKS[0])
        return StrategyForm(data, task=task, agent=agent, config=None, strategy=strategy)

    source = source or {}
    stored = _stored_values(strategy) if strategy else {}
    task, agent = pair_from(source, task=stored.get("task", TASKS[0]), agent=stored.get("agent", ""))
    preset = source.get("preset", KEEP_VALUES if strategy else "default")
    if preset not in PRESETS and not (strategy and preset == KEEP_VALUES):
        preset = "default"
    config = _defaults(task=task, agent=agent, preset=preset or "default")
    if strategy and preset == KEEP_VALUES and (task, agent) == (strategy.task, strategy.agent):
        # Over the defaults: a config stored before a parameter existed still fills every input.
        config = deep_merge(config, config_sections(strategy.config))
    initial = {**stored, **{k: source[k] for k in ("name", "description", "dataset") if source.get(k)},
               "task": task, "agent": agent, "preset": preset}
    if "dataset" not in initial:
        initial["dataset"] = _fitting_dataset(task)
    return StrategyForm(initial=initial, task=task, agent=agent, config=config, strategy=strategy)


def _fitting_dataset(task: str) -> int | None:
    """The first dataset (by name) with the assets `task` needs, else the first: what the select shows
    (it has no empty choice), said explicitly. A portfolio is not offered a single-asset dataset."""
    rows = list(dataset_list().values_list("pk", "tickers"))
    need = TASK_SPECS[task].min_assets
    return next((pk for pk, tickers in rows if len(tickers) >= need), rows[0][0] if rows else None)


def _stored_values(strategy: Strategy) -> dict:
    return {"name": strategy.name, "description": strategy.description, "task": strategy.task,
            "agent": strategy.agent, "dataset": strategy.dataset_id}


def _defaults(*, task: str, agent: str, preset: str) -> dict:
    """The pair's defaults (from the engine's schema) with the preset's values on top."""
    schema = config_schema(task=task, agent=agent)
    defaults = {
        section: {key: prop["default"] for key, prop in schema["sections"][section].get("properties", {}).items()
                  if "default" in prop}
        for section in FORM_SECTIONS
    }
    return deep_merge(defaults, schema["presets"].get(preset, {}))
