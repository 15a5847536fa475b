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
SECRETS=(POSTGRES_PASSWORD USER_SERVICE_SECRET_KEY EVENT_SEAL_KEYS NOTIFICATION_DB_PASSWORD
    NOTIFICATION_SERVICE_SECRET_KEY)
placeholders() {
    export POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-placeholder-password}
    export USER_SERVICE_SECRET_KEY=${USER_SERVICE_SECRET_KEY:-placeholder-secret-key-of-32-chars!!}
    export EVENT_SEAL_KEYS=${EVENT_SEAL_KEYS:-'["placeholder-seal-key-of-32-characters!"]'}
    export NOTIFICATION_DB_PASSWORD=${NOTIFICATION_DB_PASSWORD:-placeholder-password-2}
    export NOTIFICATION_SERVICE_SECRET_KEY=${NOTIFICATION_SERVICE_SECRET_KEY:-placeholder-secret-key-of-32-chars!?}
}

compose_config() {
    (
        cd deploy
        placeholders
        docker-compose -f docker-compose.yml config -q
        services=$(docker-compose -f docker-compose.yml --profile monitoring config --services)
        for service in prometheus alertmanager; do
            grep -qx "$service" <<<"$services" || {
                echo "the monitoring profile has no $service service" >&2
                exit 1
            }
        done
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

# Without any one of the secrets the stack must refuse to start rather than run with an
# empty one.
compose_requires_secrets() (
    cd deploy
    placeholders
    empty=$(mktemp)
    trap 'rm -f "$empty"' EXIT
    for secret in "${SECRETS[@]}"; do
        status=0
        out=$(env -u "$secret" \
            docker-compose -f docker-compose.yml --env-file "$empty" config -q 2>&1) || status=$?
        if [ "$status" -eq 0 ] || ! grep -q "$secret" <<<"$out"; then
            echo "docker-compose.yml must refuse a missing $secret:" >&2
            echo "$out" >&2
            exit 1
        fi
    done
)

# The config loads, and alerts of either severity reach the mail receiver.
alertmanager_config() {
    local config=deploy/alertmanager/alertmanager.yml severity
    amtool check-config "$config"
    for severity in critical warning; do
        amtool config routes test --config.file="$config" --verify.receivers=operators-mail \
            severity="$severity" alertname=DeployCheck job=notification_service 2>/dev/null
    done
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
step "nginx routes (real nginx)" python scripts/check_nginx_routes.py
step "service database script" python scripts/check_service_database.py
step "Kubernetes manifests" python scripts/check_k8s.py
step "deploy env vs settings classes" python scripts/check_deploy_env.py
step "promtool check config" prometheus_config
step "promtool check rules" promtool check rules deploy/prometheus/alerts.yml
step "promtool test rules" promtool test rules deploy/prometheus/alerts.test.yml
step "amtool check-config + routes" alertmanager_config

echo "--- deploy-check: OK"
printf '    %s\n' "${timings[@]}"
