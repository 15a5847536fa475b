"""nginx as a real process in front of service instances, configured like deploy/nginx/nginx.conf.

The proxying directives are the production ones (headers, timeouts, which failures move a
request to another instance); what differs is only what a test needs: a fixed upstream
list of loopback ports instead of Docker's DNS, files under a private prefix, one worker.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from servicekit.testing.process import ServiceProcess

_CONFIG = """\
# Generated for one test run; mirrors deploy/nginx/nginx.conf.
{user}worker_processes 1;
daemon off;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;

events {{
    worker_connections 1024;
}}

http {{
    server_tokens off;
    client_body_temp_path {prefix}/client-body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;

    log_format edge '$remote_addr "$request" $status $body_bytes_sent '
                    'rt=$request_time upstream=$upstream_addr ust=$upstream_status '
                    'request_id=$req_id';
    access_log {prefix}/access.log edge;

    map $http_x_request_id $req_id {{
        default $http_x_request_id;
        ""      $request_id;
    }}

    upstream user_service {{
{servers}
    }}

    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 1m;

        location = /metrics {{
            return 404;
        }}

        location / {{
            proxy_pass http://user_service;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Request-ID $req_id;
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
            # As in production: idempotent requests move to another instance; nginx never
            # retries a POST it has already sent (no `non_idempotent`).
            proxy_next_upstream error timeout http_502;
            proxy_next_upstream_tries 2;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    """The nginx executable (Debian installs it in /usr/sbin, often missing from PATH)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.fail(
            "nginx is not installed: `make scale-test` installs it (scripts/ensure-tools.sh)"
        )
    return found


def nginx_config(prefix: Path, port: int, upstream_ports: Sequence[int]) -> str:
    """The configuration text: listen on ``port``, spread requests over ``upstream_ports``."""
    servers = "\n".join(f"        server 127.0.0.1:{p};" for p in upstream_ports)
    # Run as root, nginx would switch its workers to `nobody`, who cannot enter the test's
    # private temporary folder.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return _CONFIG.format(user=user, prefix=prefix, port=port, servers=servers)


def start_nginx(prefix: Path, port: int, upstream_ports: Sequence[int]) -> ServiceProcess:
    """Write the configuration under ``prefix`` and start nginx in the foreground."""
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(prefix, port, upstream_ports))
    argv = [nginx_binary(), "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    return ServiceProcess(argv, log_path=prefix / "stdout.log", port=port)
