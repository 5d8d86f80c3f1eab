"""Read the forms out of rendered pages, so tests can find every form the portal shows."""
from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Optional


@dataclass
class FormField:
    name: str
    kind: str                      # input type, "select" or "textarea"
    value: str = ""
    options: list[str] = field(default_factory=list)
    required: bool = False


@dataclass
class Form:
    action: str
    method: str
    fields: list[FormField] = field(default_factory=list)

    @property
    def has_csrf_token(self) -> bool:
        # prefixed forms name it "<prefix>-csrf_token"; Flask-WTF accepts any field ending so
        return any(f.name.endswith("csrf_token") and f.value for f in self.fields)

    def defaults(self) -> dict[str, str]:
        """What a browser would send unchanged (first option of a select, checked boxes omitted)."""
        values: dict[str, str] = {}
        for f in self.fields:
            if f.kind in ("submit", "button", "file", "checkbox", "radio"):
                continue
            if f.kind == "select":
                values[f.name] = f.value or (f.options[0] if f.options else "")
            else:
                values[f.name] = f.value
        return values


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Optional[Form] = None
        self._select: Optional[FormField] = None
        self._textarea: Optional[FormField] = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._form = Form(action=a.get("action", ""), method=(a.get("method") or "get").lower())
            self.forms.append(self._form)
            return
        if self._form is None or not a.get("name"):
            if tag == "option" and self._select is not None:
                self._select.options.append(a.get("value", ""))
                if "selected" in a:
                    self._select.value = a.get("value", "")
            return
        required = "required" in a
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in a:
                self._form.fields.append(FormField(a["name"], kind, "", [a.get("value", "y")], required))
            else:
                self._form.fields.append(FormField(a["name"], kind, a.get("value", ""), [a.get("value", "")], required))
        elif tag == "select":
            self._select = FormField(a["name"], "select", "", [], required)
            self._form.fields.append(self._select)
        elif tag == "textarea":
            self._textarea = FormField(a["name"], "textarea", "", [], required)
            self._form.fields.append(self._textarea)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea.value += data


def forms_in(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms
