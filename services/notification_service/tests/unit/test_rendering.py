"""Every kind of mail renders both parts; a template that cannot render says why."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import DictLoader, Environment, StrictUndefined

from notification_service.services.kinds import KINDS
from notification_service.services.rendering import MailRenderer, RenderError

pytestmark = pytest.mark.unit

CONTEXT: dict[str, Any] = {
    "name": "Ada",
    "product": "Acme",
    "link": "https://example.test/verify-email?token=abc",
    "expires_at": "2026-12-07T10:00:00+00:00",
    "at": "2026-12-06 10:00 UTC",
    "method": "changed",
    "ip": "203.0.113.9",
    "user_agent": "curl/8",
    "reset": "https://example.test/reset-password",
    "new_email": "ada@new.example",
    "by_admin": True,
    "remaining": 2,
    "few_left": True,
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_renders_a_subject_a_text_and_an_html_part(kind: str) -> None:
    mail = MailRenderer().render(kind, CONTEXT)
    assert mail.subject
    assert mail.text.startswith("Hello Ada,")
    assert "<html" in mail.html
    assert f"<title>{mail.subject}</title>" in mail.html
    if KINDS[kind].link_path:
        assert CONTEXT["link"] in mail.text
        assert f'href="{CONTEXT["link"]}"' in mail.html


def test_a_missing_variable_or_a_broken_template_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="link"):
        MailRenderer().render("verify_email", {k: v for k, v in CONTEXT.items() if k != "link"})
    broken = Environment(
        loader=DictLoader({"welcome.txt.j2": "{% if %}", "welcome.html.j2": ""}),
        undefined=StrictUndefined,
        autoescape=True,
    )
    with pytest.raises(RenderError, match="welcome"):
        MailRenderer(broken).render("welcome", CONTEXT)
