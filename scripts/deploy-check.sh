#!/usr/bin/env bash
# Validate the deployment artefacts under deploy/ without a Docker engine or a cluster.
# Run through `make deploy-check` (part of `make check`), which puts the uv environment's
# tools (hadolint, kubernetes-validate, PyYAML) on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-tools.sh

timings=()
step() {
    local name=$1
    shift
    local start=$SECONDS
    echo "--- deploy-check: $name"
    "$@"
    timings+=("$(printf '%-34s %3ss' "$name" $((SECONDS - start)))")
}

# Compose needs the values deploy/.env provides; placeholders stand in for the check only.
compose_config() {
    (
        cd deploy
        export POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-placeholder-password}
        export USER_SERVICE_SECRET_KEY=${USER_SERVICE_SECRET_KEY:-placeholder-secret-key-of-32-chars!!}
        export EVENT_SEAL_KEYS=${EVENT_SEAL_KEYS:-'["placeholder-seal-key-of-32-characters!"]'}
        docker-compose -f docker-compose.yml config -q
        services=$(docker-compose -f docker-compose.yml --profile monitoring config --services)
        grep -qx prometheus <<<"$services" || {
            echo "the monitoring profile has no prometheus service" >&2
            exit 1
        }
    )
}

# promtool opens the scrape's credentials_file (relative to the config, where Compose mounts
# the secret); a stand-in token takes its place in a copy of the folder.
prometheus_config() {
    local dir
    dir=$(mktemp -d)
    cp deploy/prometheus/*.yml "$dir"
    echo placeholder-metrics-token >"$dir/metrics_token"
    promtool check config "$dir/prometheus.yml"
    rm -rf "$dir"
}

# Without the secrets the stack must refuse to start rather than run with empty ones.
compose_requires_secrets() {
    local out empty status=0
    empty=$(mktemp)
    out=$(cd deploy && env -u POSTGRES_PASSWORD -u USER_SERVICE_SECRET_KEY -u EVENT_SEAL_KEYS \
        docker-compose -f docker-compose.yml --env-file "$empty" config -q 2>&1) || status=$?
    rm -f "$empty"
    if [ "$status" -eq 0 ] || ! grep -q "POSTGRES_PASSWORD\|USER_SERVICE_SECRET_KEY" <<<"$out"; then
        echo "docker-compose.yml must refuse a missing POSTGRES_PASSWORD / USER_SERVICE_SECRET_KEY:" >&2
        echo "$out" >&2
        return 1
    fi
}

nginx_config() {
    local prefix
    prefix=$(mktemp -d)
    local nginx_bin
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
    "$nginx_bin" -t -q -p "$prefix/" -e /dev/stderr -c "$PWD/deploy/nginx/nginx.conf"
    rm -rf "$prefix"
}

step "hadolint deploy/Dockerfile" hadolint deploy/Dockerfile
step "Dockerfile steps + image smoke run" python scripts/dockerfile_smoke.py
step "docker-compose config" compose_config
step "compose refuses missing secrets" compose_requires_secrets
step "nginx -t" nginx_config
step "Kubernetes manifests" python scripts/check_k8s.py
step "deploy env vs settings classes" python scripts/check_deploy_env.py
step "promtool check config" prometheus_config
step "promtool check rules" promtool check rules deploy/prometheus/alerts.yml
step "promtool test rules" promtool test rules deploy/prometheus/alerts.test.yml

echo "--- deploy-check: OK"
printf '    %s\n' "${timings[@]}"
