"""Validate deploy/k8s offline: Kubernetes schemas plus the invariants the manifests promise.

1. Every complete manifest file (the bases ``base`` (user service) and
   ``notification-service``, and the overlays; not kustomization.yaml, not ``*-patch.yaml``)
   is validated on its own with kubernetes-validate.
2. Each kustomization (every base and overlay) is rendered with ``kubectl kustomize``
   (or ``kustomize build``) and the output is validated, so the patches and generators are
   checked as the cluster would receive them. Without either tool this step is skipped
   with a warning; step 1 still runs.
3. Cross-references kubernetes-validate cannot see: Service, PodDisruptionBudget and the
   pod template agree on labels, the HPA targets an existing Deployment, referenced
   ConfigMaps exist, every container has resources and a hardened security context, and
   every Deployment container that serves (declares a port) has probes; one without a port
   (a worker) has no HTTP to probe, and the kubelet restarts it when its process exits.

Schemas: the oldest and the newest Kubernetes release kubernetes-validate bundles that we
support (``K8S_VERSIONS``), with ``--strict`` (unknown fields are errors).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from collections.abc import Iterable

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
K8S_VERSIONS = ("1.29.0", "1.37.0")
WORKLOADS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}
PROBES = ("livenessProbe", "readinessProbe")


def say(message: str) -> None:
    """Print a line on stdout."""
    sys.stdout.write(f"{message}\n")


def validate(paths: Iterable[Path]) -> None:
    """kubernetes-validate --strict against each supported version; raises on failure."""
    files = [str(p) for p in paths]
    for version in K8S_VERSIONS:
        subprocess.run(  # noqa: S603 - fixed argv, our own files
            ["kubernetes-validate", "--strict", "--quiet", "-k", version, *files],  # noqa: S607
            check=True,
        )


def renderer() -> list[str] | None:
    """The command that renders a kustomization directory, if the machine has one."""
    if shutil.which("kubectl"):
        probe = subprocess.run(
            ["kubectl", "kustomize", "--help"],  # noqa: S607
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return None


def documents(text: str) -> list[dict[str, Any]]:
    """The mappings of a multi-document YAML text (empty and other documents dropped)."""
    return [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod template's spec of a workload."""
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def check_invariants(name: str, docs: list[dict[str, Any]], *, rendered: bool) -> list[str]:
    """Problems schema validation cannot find, as messages."""
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    problems = selector_problems(by_kind)
    config_maps = set(by_kind.get("ConfigMap", {}))
    for kind in WORKLOADS & by_kind.keys():
        for wname, workload in by_kind[kind].items():
            problems += workload_problems(
                name, kind, wname, workload, config_maps if rendered else None
            )
    return [f"{name}: {p}" for p in problems]


def selector_problems(by_kind: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Deployments, Services, PodDisruptionBudgets and HPAs that do not point at the pods."""
    problems: list[str] = []
    deployments = by_kind.get("Deployment", {})
    pod_labels = {
        dname: d["spec"]["template"]["metadata"].get("labels", {})
        for dname, d in deployments.items()
    }

    def selects_a_deployment(selector: dict[str, str]) -> bool:
        return any(selector.items() <= labels.items() for labels in pod_labels.values())

    for dname, d in deployments.items():
        if not d["spec"]["selector"]["matchLabels"].items() <= pod_labels[dname].items():
            problems.append(f"Deployment {dname}: selector does not match its pod labels")
    for sname, svc in by_kind.get("Service", {}).items():
        if not selects_a_deployment(svc["spec"].get("selector", {})):
            problems.append(f"Service {sname}: selector matches no Deployment's pods")
    for pname, pdb in by_kind.get("PodDisruptionBudget", {}).items():
        if not selects_a_deployment(pdb["spec"]["selector"].get("matchLabels", {})):
            problems.append(f"PodDisruptionBudget {pname}: selector matches no Deployment's pods")
    for hname, hpa in by_kind.get("HorizontalPodAutoscaler", {}).items():
        target = hpa["spec"]["scaleTargetRef"]
        if target["kind"] == "Deployment" and target["name"] not in deployments:
            problems.append(f"HorizontalPodAutoscaler {hname}: no Deployment {target['name']}")
        if hpa["spec"].get("minReplicas", 1) < 2:
            problems.append(f"HorizontalPodAutoscaler {hname}: minReplicas < 2 defeats the PDB")
    return problems


def workload_problems(
    name: str, kind: str, wname: str, workload: dict[str, Any], config_maps: set[str] | None
) -> list[str]:
    """A workload's pod and containers: hardening, resources, probes, ConfigMap references.

    ``config_maps`` holds the ConfigMaps of the rendered kustomization ``name`` (envFrom
    references must be among them), or is ``None`` for files on their own (not checked).
    """
    spec = pod_spec(workload)
    where = f"{kind} {wname}"
    problems: list[str] = []
    if not spec.get("securityContext", {}).get("runAsNonRoot"):
        problems.append(f"{where}: pod securityContext.runAsNonRoot is not true")
    for container in spec["containers"]:
        at = f"{where} container {container['name']}"
        context = container.get("securityContext", {})
        if not context.get("readOnlyRootFilesystem"):
            problems.append(f"{at}: readOnlyRootFilesystem is not true")
        if context.get("allowPrivilegeEscalation", True):
            problems.append(f"{at}: allowPrivilegeEscalation is not false")
        resources = container.get("resources", {})
        if not resources.get("requests") or not resources.get("limits"):
            problems.append(f"{at}: resources need requests and limits")
        if kind == "Deployment" and container.get("ports"):
            problems += [f"{at}: no {probe}" for probe in PROBES if probe not in container]
        for source in container.get("envFrom", []):
            ref = source.get("configMapRef", {}).get("name")
            if config_maps is not None and ref and ref not in config_maps:
                problems.append(f"{at}: ConfigMap {ref} is not part of {name}")
    return problems


def main() -> int:
    """Validate the files, then each rendered kustomization, with the invariants; 1 on a problem."""
    standalone = sorted(
        p
        for p in K8S.rglob("*.yaml")
        if p.name != "kustomization.yaml" and not p.name.endswith("-patch.yaml")
    )
    say(f"k8s: validating {len(standalone)} manifest files one by one")
    validate(standalone)

    kustomizations = sorted(p.parent for p in K8S.rglob("kustomization.yaml"))
    problems: list[str] = []
    for directory in kustomizations:
        problems += check_invariants(
            f"{directory.relative_to(ROOT)} (files)",
            [
                d
                for p in directory.glob("*.yaml")
                if p.name != "kustomization.yaml" and not p.name.endswith("-patch.yaml")
                for d in documents(p.read_text())
            ],
            rendered=False,
        )

    render = renderer()
    if render is None:
        say(
            "k8s: WARNING: neither `kubectl kustomize` nor `kustomize` is installed; the "
            "rendered base and overlays were NOT validated (patches and generators unchecked)"
        )
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for directory in kustomizations:
                rel = directory.relative_to(ROOT)
                out = subprocess.run(  # noqa: S603 - fixed argv, our own directory
                    [*render, str(directory)], capture_output=True, text=True, check=False
                )
                if out.returncode != 0:
                    sys.stderr.write(out.stderr)
                    say(f"k8s: rendering {rel} failed")
                    return 1
                target = Path(tmp) / (str(rel).replace("/", "_") + ".yaml")
                target.write_text(out.stdout)
                docs = documents(out.stdout)
                say(f"k8s: {' '.join(render)} {rel}: {len(docs)} objects")
                validate([target])
                problems += check_invariants(str(rel), docs, rendered=True)

    for problem in problems:
        say(f"k8s: {problem}")
    if problems:
        return 1
    say(f"k8s: OK (schemas {', '.join(K8S_VERSIONS)}, strict)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
