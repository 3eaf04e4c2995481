"""A page's form as a browser sees it: the values it would send, and the errors shown on its inputs.

The pages are Jinja2 templates, which Django's test client does not record a context for; reading the
HTML tests what the user gets anyway.
"""
from html.parser import HTMLParser

NOT_SENT = frozenset({"submit", "button", "reset", "image", "file"})


class ShownForm(HTMLParser):
    """Feed it a page; `values` (name -> str, as posted) and `errors` (name -> [message]) of the form
    with id `form_id`. A form-level error list (no input's id) is under "__all__"."""

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.values: dict[str, str] = {}
        self.errors: dict[str, list[str]] = {}
        self._in_form = False
        self._select: str | None = None
        self._select_first: str | None = None
        self._textarea: str | None = None
        self._errors_of: str | None = None
        self._error_text: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._in_form = a.get("id") == self.form_id
        opened = getattr(self, f"_open_{tag}", None)
        if self._in_form and opened is not None:
            opened(a)

    def _open_input(self, a: dict) -> None:
        if not a.get("name") or a.get("type", "text") in NOT_SENT:
            return
        if a.get("type") not in ("checkbox", "radio"):
            self.values[a["name"]] = a.get("value") or ""
        elif "checked" in a:
            self.values[a["name"]] = a.get("value") or "on"

    def _open_select(self, a: dict) -> None:
        self._select, self._select_first = a.get("name"), None

    def _open_option(self, a: dict) -> None:
        if not self._select:
            return
        value = a.get("value") or ""
        if self._select_first is None:
            self._select_first = value
        if "selected" in a:
            self.values[self._select] = value

    def _open_textarea(self, a: dict) -> None:
        self._textarea = a.get("name")
        self.values[self._textarea] = ""

    def _open_ul(self, a: dict) -> None:
        if "errorlist" not in (a.get("class") or "").split():
            return
        element_id = a.get("id") or ""
        name = element_id[len("id_"):-len("_errors")] if element_id.endswith("_errors") else "__all__"
        self._errors_of = name
        self.errors.setdefault(name, [])

    def _open_li(self, a: dict) -> None:
        if self._errors_of:
            self._error_text = []

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "select" and self._select:
            self.values.setdefault(self._select, self._select_first or "")
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "li" and self._error_text is not None:
            self.errors[self._errors_of].append("".join(self._error_text).strip())
            self._error_text = None
        elif tag == "ul":
            self._errors_of = None

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += data
        if self._error_text is not None:
            self._error_text.append(data)


def shown(response, form_id: str) -> ShownForm:
    parser = ShownForm(form_id)
    parser.feed(response.content.decode())
    parser.close()
    return parser
