#!/usr/bin/env python3
"""Renders deploy/kubernetes with `kubectl kustomize` and checks the result (ctest
deploy_kubernetes_kustomize).

Usage: check_kustomize.py --root REPO [--kubectl PATH]

`kubectl kustomize` (kubectl 1.20, Debian's kubernetes-client, and later) needs
no cluster; it fails on a YAML error, a resource file that is missing, two
objects with one kind/namespace/name, or a kustomization field it does not
know. Then, on what it rendered:
  - exactly the objects of the kustomization's resource files, each once;
  - every manifest file of the directory is a resource or one of the files
    applied separately (kustomization.yaml says which, and why);
  - every namespaced object in the one Namespace the manifests create;
  - each kind at its GA apiVersion (no beta API that newer clusters removed);
  - the Deployments run the images deploy/docker builds (octo-webhooks/NAME),
    so `kustomize edit set image octo-webhooks/NAME=...` retargets them.
(`kubectl apply --dry-run=client` would validate fields too, but it needs an
API server to discover the kinds, even with --validate=false.)

A missing kubectl fails, never skips (scripts/install-deps.sh installs it).
Exit status 0 when everything holds; otherwise every problem, one a line, 1.
"""
import argparse
import os
import shutil
import subprocess
import sys

import yaml

# The manifests kustomization.yaml leaves out on purpose (its header says
# why): Prometheus Operator objects and a plain-Prometheus scrape config.
APPLIED_SEPARATELY = {"servicemonitor.yaml", "prometheusrule.yaml", "prometheus-scrape-config.yaml"}
GA_API_VERSIONS = {
    "Namespace": "v1",
    "ConfigMap": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
}
CLUSTER_SCOPED = {"Namespace"}


def object_id(o):
    meta = o.get("metadata") or {}
    return (o.get("kind"), meta.get("namespace"), meta.get("name"))


def check(root, kubectl, problems):
    kdir = os.path.join(root, "deploy/kubernetes")
    run = subprocess.run([kubectl, "kustomize", kdir], capture_output=True, text=True)
    if run.returncode != 0:
        problems.append(f"kubectl kustomize deploy/kubernetes failed: {run.stderr.strip()}")
        return 0
    rendered = [o for o in yaml.safe_load_all(run.stdout) if o]
    with open(os.path.join(kdir, "kustomization.yaml"), encoding="utf-8") as f:
        resources = yaml.safe_load(f).get("resources", [])
    expected = []
    for name in resources:
        with open(os.path.join(kdir, name), encoding="utf-8") as f:
            expected.extend(object_id(o) for o in yaml.safe_load_all(f) if o)
    got = [object_id(o) for o in rendered]
    for missing in sorted(set(expected) - set(got), key=str):
        problems.append(f"rendered output lacks {missing}")
    for extra in sorted(set(got) - set(expected), key=str):
        problems.append(f"rendered output has {extra}, which no resource file holds")
    for dup in sorted({i for i in got if got.count(i) > 1}, key=str):
        problems.append(f"rendered output has {dup} more than once")
    for f in sorted(os.listdir(kdir)):
        if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml" and \
                f not in resources and f not in APPLIED_SEPARATELY:
            problems.append(f"deploy/kubernetes/{f} is neither a kustomization resource nor applied separately")
    namespaces = {o["metadata"]["name"] for o in rendered if o.get("kind") == "Namespace"}
    if len(namespaces) != 1:
        problems.append(f"expected one Namespace, got {sorted(namespaces)}")
    for o in rendered:
        kind, namespace, name = object_id(o)
        if kind not in GA_API_VERSIONS:
            problems.append(f"{kind} {name}: a kind this check does not know (add its GA apiVersion)")
        elif o.get("apiVersion") != GA_API_VERSIONS[kind]:
            problems.append(f"{kind} {name}: apiVersion {o.get('apiVersion')}, expected {GA_API_VERSIONS[kind]}")
        if kind not in CLUSTER_SCOPED and namespace not in namespaces:
            problems.append(f"{kind} {name}: namespace {namespace!r}, not the manifests' {sorted(namespaces)}")
        if kind == "Deployment":
            for c in o["spec"]["template"]["spec"]["containers"]:
                image = c.get("image", "")
                wanted = "octo-webhooks/" + name.removeprefix("octo-")
                if image.rsplit(":", 1)[0] != wanted:
                    problems.append(f"Deployment {name}: image {image}, expected {wanted}:TAG (deploy/docker)")
    return len(rendered)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="the repository")
    parser.add_argument("--kubectl", default="kubectl")
    args = parser.parse_args()
    kubectl = shutil.which(args.kubectl)
    if not kubectl:
        print(f"FAIL: kubectl not found ({args.kubectl}): install the Debian package kubernetes-client "
              "(scripts/install-deps.sh)", file=sys.stderr)
        return 1
    problems = []
    count = check(args.root, kubectl, problems)
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if not problems:
        print(f"kustomize: deploy/kubernetes renders {count} objects with {kubectl}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
