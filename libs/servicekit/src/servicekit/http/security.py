"""Trusted-host policy and the security headers every response carries."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

RawHeaders = list[tuple[bytes, bytes]]

# Swagger UI and ReDoc (assets served by the service itself, no CDN) run inline scripts and
# styles, and ReDoc a worker from a blob; they get this looser policy.
DOCS_PATHS = ("/docs", "/redoc")
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'"
)
_COMMON = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "no-store",
}
_HSTS = "max-age=63072000; includeSubDomains"

# Probes and scrapers address a pod by IP; these paths answer whatever the Host header.
_HOST_EXEMPT_PATHS = ("/health/", "/metrics")


class HostPolicy:
    """Which ``Host`` headers are served: exact names, ``*.example.com`` wildcards, or ``*``.

    Health and metrics paths are exempt: orchestrators probe them by pod IP.
    """

    def __init__(self, allowed_hosts: Sequence[str]) -> None:
        self.allow_any = "*" in allowed_hosts
        self.exact = {h.lower() for h in allowed_hosts if not h.startswith("*.")}
        self.suffixes = tuple(h[1:].lower() for h in allowed_hosts if h.startswith("*."))

    def is_allowed(self, host: str) -> bool:
        """Whether ``host`` (without port) is trusted."""
        host = host.lower()
        return host in self.exact or (bool(self.suffixes) and host.endswith(self.suffixes))

    def admits(self, path: str, raw_host: str) -> bool:
        """Whether a request for ``path`` with the ``Host`` header ``raw_host`` is served."""
        if self.allow_any or path.startswith(_HOST_EXEMPT_PATHS):
            return True
        host = raw_host.rsplit(":", 1)[0] if not raw_host.endswith("]") else raw_host
        return self.is_allowed(host.strip("[]"))


class SecurityHeaders:
    """Conservative security headers, encoded once; a header the app set itself is kept."""

    def __init__(self, *, hsts: bool) -> None:
        common = dict(_COMMON)
        if hsts:
            common["strict-transport-security"] = _HSTS
        self._api = _encode({**common, "content-security-policy": _API_CSP})
        self._docs = _encode({**common, "content-security-policy": _DOCS_CSP})
        self._names = frozenset(name for name, _ in self._api)

    def add(self, raw: RawHeaders, path: str) -> None:
        """Append the headers ``raw`` lacks."""
        headers = self._docs if path.startswith(DOCS_PATHS) else self._api
        names = self._names
        if not any(name in names for name, _ in raw):  # the usual case: the app set none
            raw.extend(headers)
            return
        present = {name for name, _ in raw}
        raw.extend(item for item in headers if item[0] not in present)


def _encode(headers: dict[str, str]) -> RawHeaders:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
