#!/usr/bin/env bash
# Make sure the command-line tools the targets use are installed; install the missing ones
# from Debian packages. With tool names as arguments, only those (`make test` asks for
# oathtool alone); without, the `make deploy-check` set. Runs `apt-get update` once, and only when something is
# missing, so a warm machine pays nothing.
#
#   promtool        <- prometheus      (check / test the alert rules)
#   docker-compose  <- docker-compose  (parse the Compose file; no Docker engine needed)
#   nginx           <- nginx           (`nginx -t` on deploy/nginx/nginx.conf)
#   amtool          <- prometheus-alertmanager (`amtool check-config` on the Alertmanager config)
#   oathtool        <- oathtool        (independent TOTP codes for the MFA tests)
#
# The Python tools (hadolint, kubernetes-validate) come from the uv dev group instead;
# kubectl (for `kubectl kustomize`) is used when the machine has it.
set -euo pipefail

declare -A PACKAGE=(
    [promtool]=prometheus [docker-compose]=docker-compose [nginx]=nginx
    [amtool]=prometheus-alertmanager [oathtool]=oathtool
)
if [ $# -gt 0 ]; then TOOLS=("$@"); else TOOLS=(promtool docker-compose nginx amtool); fi

have() {
    # nginx lives in /usr/sbin, which a non-root PATH may lack.
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]
}

missing=()
for tool in "${TOOLS[@]}"; do
    have "$tool" || missing+=("${PACKAGE[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-tools: error: missing tools and not root; install them first:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-tools: error: no apt-get here; install ${missing[*]} with your package manager" >&2
    exit 1
fi

# The packages ship services (prometheus, alertmanager, nginx) that must not start here:
# unless the machine already has a policy, forbid service starts for the duration of the install.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

echo "ensure-tools: installing ${missing[*]} (Debian packages)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

for tool in "${TOOLS[@]}"; do
    have "$tool" || { echo "ensure-tools: error: $tool still missing after install" >&2; exit 1; }
done
