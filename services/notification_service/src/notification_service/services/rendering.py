"""Mail bodies from Jinja2 templates: a plain-text and an HTML part per kind.

HTML templates are autoescaped (a name like ``<b>Eve</b>`` arrives as text, never markup);
an undefined variable is an error, never an empty string, so a broken template fails its
delivery with the reason instead of sending a mail with holes. The subject is set by the
text template (``{% set subject = "…" %}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateError, select_autoescape


class RenderError(Exception):
    """A template failed to render (a permanent failure of its delivery)."""


@dataclass(frozen=True, slots=True)
class RenderedMail:
    """The subject and both parts of one message."""

    subject: str
    text: str
    html: str


class MailRenderer:
    """Renders ``templates/<kind>.txt.j2`` and ``<kind>.html.j2`` of this package."""

    def __init__(self, environment: Environment | None = None) -> None:
        self.environment = environment or Environment(
            loader=PackageLoader("notification_service", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, kind: str, context: dict[str, Any]) -> RenderedMail:
        """The mail of ``kind`` with ``context``; raises :class:`RenderError`."""
        try:
            text = self.environment.get_template(f"{kind}.txt.j2").make_module(context)
            subject = str(getattr(text, "subject", "")).strip()
            html = self.environment.get_template(f"{kind}.html.j2").render(
                {**context, "subject": subject}
            )
        except TemplateError as exc:
            raise RenderError(f"template {kind}: {exc}") from exc
        if not subject:
            raise RenderError(f"template {kind}.txt.j2 sets no subject")
        return RenderedMail(subject=subject, text=str(text).strip() + "\n", html=html)
