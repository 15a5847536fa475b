"""Generate ``docs/events.md`` from the user service's event catalog.

``make docs`` runs it; ``--check`` exits 1 when the committed page differs from what the
code renders (a test runs it, so an event change without ``make docs`` is caught).

Usage: ``python scripts/gen_events_docs.py [--check]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from servicekit.events.docs import catalog_markdown
from user_service.schemas.events import catalog

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "events.md"


def render() -> str:
    """The page as the code describes the events now."""
    return catalog_markdown(
        catalog(), service="user_service", generator="scripts/gen_events_docs.py"
    )


def main() -> int:
    """Write the page, or with ``--check`` compare it with the committed one."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the page is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            sys.stderr.write(f"{OUTPUT} is stale: run `make docs`\n")
            return 1
        return 0
    OUTPUT.write_text(text)
    sys.stdout.write(f"wrote {OUTPUT}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
