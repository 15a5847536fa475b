"""Run deploy/nginx/nginx.conf for real and check where it sends each path.

``nginx -t`` proves the syntax only. Here the Compose configuration itself runs, with only
what needs Docker rewritten (each rewrite must match exactly once, so a reshaped file fails
here rather than going unchecked): the listen port, the two upstreams (Docker DNS names
become loopback ports, so no resolver is needed), and the pid and temporary paths. Two
HTTP servers stand in for the services and answer with their name, the path and the
forwarding headers they received.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from servicekit.testing.process import free_port

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "nginx" / "nginx.conf"
#: (method, path) → the backend that must answer it, or an HTTP status nginx answers itself.
ROUTES: list[tuple[str, str, str | int]] = [
    ("GET", "/api/v1/notifications", "notification_service"),
    ("GET", "/api/v1/notifications?limit=5&after=abc", "notification_service"),
    ("GET", "/api/v1/notification-preferences", "notification_service"),
    ("PUT", "/api/v1/notification-preferences", "notification_service"),
    ("GET", "/api/v1/deliveries?status=failed", "notification_service"),
    ("POST", "/api/v1/deliveries/01J0000000000000000000000/retry", "notification_service"),
    ("GET", "/api/v1/users/me", "user_service"),
    ("POST", "/api/v1/auth/login", "user_service"),
    ("GET", "/api/v1/notification-preferences/extra", "user_service"),
    ("GET", "/.well-known/jwks.json", "user_service"),
    ("GET", "/verify-email?token=x", "user_service"),
    ("GET", "/metrics", 404),
]


def say(message: str) -> None:
    """Print a line prefixed with ``nginx-routes:``."""
    sys.stdout.write(f"nginx-routes: {message}\n")


def backend(name: str) -> ThreadingHTTPServer:
    """A loopback HTTP server answering every request with ``name`` and what it received."""

    class Echo(BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = json.dumps(
                {
                    "backend": name,
                    "path": self.path,
                    "forwarded_for": self.headers.get("X-Forwarded-For"),
                    "request_id": self.headers.get("X-Request-ID"),
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_POST = answer

        def log_message(self, *_args: object) -> None:  # quiet: nginx's own log suffices
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def rewrite(text: str, prefix: Path, port: int, upstreams: dict[str, int]) -> str:
    """The configuration with the Docker-only parts replaced; each must match once."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # else workers run as `nobody`
    substitutions = [
        (r"^pid [^;]*/nginx\.pid;", f"{user}pid {prefix}/nginx.pid;"),
        (r"^\s*resolver 127\.0\.0\.11 [^;]*;", ""),
        (r"listen 8080;", f"listen 127.0.0.1:{port};"),
        *(
            (rf"http://{name}:\d+;", f"http://127.0.0.1:{upstream};")
            for name, upstream in upstreams.items()
        ),
    ]
    text = text.replace("/tmp/nginx-", f"{prefix}/nginx-")  # noqa: S108 - rewritten away
    for pattern, replacement in substitutions:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        if count != 1:
            raise SystemExit(f"{CONFIG}: expected one match of {pattern!r}, found {count}")
    return text


def request(port: int, method: str, path: str) -> tuple[int, dict[str, str]]:
    """Send one request through nginx; the status and the backend's JSON (empty if none)."""
    url = f"http://127.0.0.1:{port}{path}"
    data = b"{}" if method in {"POST", "PUT"} else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"X-Request-ID": "route-check"}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {}


def check(port: int) -> list[str]:
    """Every route of :data:`ROUTES`; the problems found."""
    problems = []
    for method, path, expected in ROUTES:
        status, seen = request(port, method, path)
        got: str | int = seen.get("backend", status)
        if got != expected:
            problems.append(f"{method} {path}: {got}, expected {expected}")
        elif seen and (seen["path"] != path or seen["request_id"] != "route-check"):
            problems.append(f"{method} {path}: reached the backend as {seen}")
        elif seen and seen["forwarded_for"] != "127.0.0.1":
            problems.append(f"{method} {path}: X-Forwarded-For {seen['forwarded_for']!r}")
        else:
            say(f"{method} {path} -> {got}")
    return problems


def main() -> int:
    """Start the stand-ins and nginx, check every route, stop everything; 1 on a problem."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if nginx is None:
        raise SystemExit("nginx is not installed (scripts/ensure-tools.sh installs it)")
    servers = {name: backend(name) for name in ("user_service", "notification_service")}
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="nginx-routes-") as tmp:
        prefix = Path(tmp)
        conf = prefix / "nginx.conf"
        upstreams = {name: server.server_address[1] for name, server in servers.items()}
        conf.write_text(rewrite(CONFIG.read_text(), prefix, port, upstreams))
        proc = subprocess.Popen(  # noqa: S603 - the system's nginx, our own config
            [
                nginx,
                "-p",
                f"{prefix}/",
                "-c",
                str(conf),
                "-e",
                str(prefix / "error.log"),
                "-g",
                "daemon off;",
            ],
            stdout=subprocess.DEVNULL,  # the access log; errors go to stderr
        )
        try:
            problems = _when_listening(proc, port, prefix)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            for server in servers.values():
                server.shutdown()
    for problem in problems:
        say(problem)
    return 1 if problems else 0


def _when_listening(proc: subprocess.Popen[bytes], port: int, prefix: Path) -> list[str]:
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            log = prefix / "error.log"
            raise SystemExit(f"nginx exited: {log.read_text() if log.exists() else ''}")
        try:
            request(port, "GET", "/metrics")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("nginx never listened") from None
            time.sleep(0.1)
    return check(port)


if __name__ == "__main__":
    sys.exit(main())
