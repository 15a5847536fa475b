"""Generate ``docs/events.md`` and the AsyncAPI document from the user service's catalog.

``make docs`` runs it; ``--check`` exits 1 when a committed document differs from what the
code renders (a test runs it, so an event change without ``make docs`` is caught).

Usage: ``python scripts/gen_events_docs.py [--check]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from servicekit.events.docs import asyncapi_document, catalog_markdown
from user_service.schemas.events import catalog

DOCS = Path(__file__).resolve().parent.parent / "docs"
SERVICE = "user_service"


def render() -> dict[Path, str]:
    """Each document as the code describes the events now."""
    events = catalog()
    return {
        DOCS / "events.md": catalog_markdown(
            events, service=SERVICE, generator="scripts/gen_events_docs.py"
        ),
        DOCS / "asyncapi" / f"{SERVICE}.json": asyncapi_document(events, service=SERVICE),
    }


def main() -> int:
    """Write the page, or with ``--check`` compare it with the committed one."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the page is stale")
    args = parser.parse_args()
    documents = render()
    if args.check:
        stale = [p for p, text in documents.items() if not p.exists() or p.read_text() != text]
        for path in stale:
            sys.stderr.write(f"{path} is stale: run `make docs`\n")
        return 1 if stale else 0
    for path, text in documents.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
