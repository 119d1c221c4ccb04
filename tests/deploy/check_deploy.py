#!/usr/bin/env python3
"""Checks of deploy/ and its documentation, run by ctest (tests/deploy).

Usage: check_deploy.py COMMAND --root REPO [options]
  rules          alert/recording rule conventions, test coverage, runbook anchors,
                 metric names (promtool itself runs as separate ctest tests)
  grafana        the dashboard: valid JSON, unique ids, a query in every panel,
                 every query parsed by `promtool check rules`, metric names
  manifests      YAML parses; compose, Kubernetes and Dockerfile checks (the
                 runtime stage installs the packages of the binaries' libraries)
  kubernetes-prometheus-config
                 `promtool check config` on the scrape config of the ConfigMap
  systemd        hardening settings, `systemd-analyze verify` and `security`
                 (exit 77, a visible ctest skip, without systemd-analyze)
  config-doc     docs/configuration.md documents every flag and OCTO_* variable
  prometheus-rule
                 deploy/kubernetes/prometheusrule.yaml holds exactly the rules of
                 deploy/prometheus (--write regenerates it)
  metric-names   print the metric series the rules and the dashboard reference
                 (one a line), e.g. to compare with a live /metrics

Exit status 0 when everything holds; otherwise every problem is printed, one a
line, and the status is 1. Needs python3-yaml (scripts/install-deps.sh).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

PROBLEMS = []


def problem(message):
    PROBLEMS.append(message)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# --------------------------------------------------------------------------
# PromQL: the metric names and label names an expression references.

# Functions and aggregations are recognised by the "(" that follows them; these
# words are operators or modifiers, never metric names.
PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
    "count_values", "bottomk", "topk", "quantile", "inf", "nan",
}
IDENT = re.compile(r"(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")


def grafana_to_promql(expr):
    """Replaces Grafana's variables with values Prometheus accepts."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
    expr = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}?", ".*", expr)
    return expr


def promql_references(expr):
    """Returns (metric names, {metric: matcher label names}, grouping label names).

    A tokenizer, not a parser (promtool parses): strings, label matchers,
    ranges and grouping clauses are taken out, and an identifier that is not
    followed by "(" and is no keyword is a metric name.
    """
    selectors = {}
    grouping = set()
    text = STRING.sub('""', expr)
    for m in GROUPING.finditer(text):
        grouping.update(x.strip() for x in m.group(2).split(",") if x.strip())
    text = GROUPING.sub(" ", text)
    # Selectors with matchers: name{...}; a bare {...} selects by labels only.
    def take_selector(m):
        name = m.group(1)
        labels = set(MATCHER_LABEL.findall(m.group(2)))
        if name:
            selectors.setdefault(name, set()).update(labels)
        return f" {name or ''} "
    text = re.sub(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}", take_selector, text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    names = set()
    for m in IDENT.finditer(text):
        word = m.group(0)
        rest = text[m.end():].lstrip()
        if rest.startswith("("):
            continue  # a function or an aggregation
        if word.lower() in PROMQL_KEYWORDS:
            continue
        names.add(word)
        selectors.setdefault(word, set())
    return names, selectors, grouping


def load_contract(root):
    """{series name: allowed labels} of the metric contract (histograms expanded)."""
    series = {}
    families = {}
    for line in read(os.path.join(root, "tests/deploy/metric_contract.txt")).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, kind, labels = line.split()
        labels = set() if labels == "-" else set(labels.split(","))
        labels |= {"job", "instance"}
        families[name] = kind
        if kind == "histogram":
            series[name + "_bucket"] = labels | {"le"}
            series[name + "_sum"] = labels
            series[name + "_count"] = labels
        else:
            series[name] = labels
    return series, families


def check_expression(where, expr, contract, allowed_extra=()):
    """Checks that expr references only contract series and their labels."""
    names, selectors, grouping = promql_references(expr)
    known_labels = {"job", "instance", "le"}
    for name in sorted(names):
        if name in allowed_extra:
            continue
        if name not in contract:
            problem(f"{where}: '{name}' is not in the metric contract (tests/deploy/metric_contract.txt)")
            continue
        known_labels |= contract[name]
        for label in sorted(selectors.get(name, ())):
            if label not in contract[name]:
                problem(f"{where}: {name} has no label '{label}'")
    for label in sorted(grouping):
        if label not in known_labels:
            problem(f"{where}: groups by '{label}', which none of its metrics has")
    return names


# --------------------------------------------------------------------------
# rules

def markdown_anchors(path):
    """GitHub's anchors of the headings of a Markdown file."""
    anchors = set()
    for line in read(path).splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if not m:
            continue
        title = m.group(1).strip().lower()
        title = re.sub(r"[^\w\- ]", "", title)
        anchors.add(title.replace(" ", "-"))
    return anchors


def check_links(root, doc):
    """Relative Markdown links of doc point at existing files and headings."""
    base = os.path.dirname(os.path.join(root, doc))
    for target in re.findall(r"\]\(([^)\s]+)\)", read(os.path.join(root, doc))):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(base, path)) if path else os.path.join(root, doc)
        if not os.path.exists(full):
            problem(f"{doc}: link {target}: no such file")
        elif anchor and full.endswith(".md") and anchor not in markdown_anchors(full):
            problem(f"{doc}: link {target}: no such heading")


def load_rules(root):
    rules = []
    for name in ("alerts.yml", "recording.yml"):
        doc = yaml.safe_load(read(os.path.join(root, "deploy/prometheus", name)))
        for group in doc["groups"]:
            for rule in group["rules"]:
                rules.append((name, group["name"], rule))
    return rules


def cmd_rules(args):
    root = args.root
    contract, _ = load_contract(root)
    anchors = markdown_anchors(os.path.join(root, "docs/operations.md"))
    rules = load_rules(root)
    recorded = {r["record"] for _, _, r in rules if "record" in r}
    alerts = {}  # name -> set of severities
    for file, group, rule in rules:
        where = f"deploy/prometheus/{file}: {rule.get('alert') or rule.get('record')}"
        check_expression(where, rule["expr"], contract)
        if "record" in rule:
            if not re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["record"]):
                problem(f"{where}: recording rule names follow level:metric:operations")
            continue
        if not re.fullmatch(r"Octo[A-Za-z]+", rule["alert"]):
            problem(f"{where}: alert names are OctoSomething")
        if "for" not in rule:
            problem(f"{where}: no 'for:'")
        severity = rule.get("labels", {}).get("severity")
        if severity not in ("critical", "warning"):
            problem(f"{where}: severity must be critical or warning, not {severity!r}")
        alerts.setdefault(rule["alert"], set()).add(severity)
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not annotations.get(key):
                problem(f"{where}: no '{key}' annotation")
        url = annotations.get("runbook_url", "")
        m = re.fullmatch(r"docs/operations\.md#([a-z0-9\-_]+)", url)
        if not m:
            problem(f"{where}: runbook_url {url!r} is not docs/operations.md#<anchor>")
        elif m.group(1) not in anchors:
            problem(f"{where}: runbook_url anchor #{m.group(1)} is no heading of docs/operations.md")
    if recorded & set(alerts):
        problem("an alert and a recording rule share a name")

    # Every alert is tested firing (with each severity it has) and not firing.
    fired = {}
    quiet = set()
    tests_dir = os.path.join(root, "deploy/prometheus/tests")
    test_files = sorted(f for f in os.listdir(tests_dir) if f.endswith(".yml"))
    if not test_files:
        problem("deploy/prometheus/tests has no *.yml")
    for f in test_files:
        doc = yaml.safe_load(read(os.path.join(tests_dir, f)))
        for test in doc.get("tests", []):
            for case in test.get("alert_rule_test", []):
                name = case["alertname"]
                if name not in alerts:
                    problem(f"deploy/prometheus/tests/{f}: tests unknown alert {name}")
                expected = case.get("exp_alerts") or []
                if not expected:
                    quiet.add(name)
                for alert in expected:
                    fired.setdefault(name, set()).add(alert.get("exp_labels", {}).get("severity"))
    for name, severities in sorted(alerts.items()):
        missing = severities - fired.get(name, set())
        if missing:
            problem(f"{name}: no promtool test where it fires with severity {', '.join(sorted(missing))}")
        if name not in quiet:
            problem(f"{name}: no promtool test where it must not fire (exp_alerts: [])")
    if not alerts:
        problem("deploy/prometheus/alerts.yml has no alert")
    # The runbook's and the configuration table's own links resolve.
    for doc in ("docs/operations.md", "docs/configuration.md"):
        check_links(root, doc)
    print(f"rules: {len(alerts)} alerts, {len(recorded)} recording rules, {len(test_files)} test files")


# --------------------------------------------------------------------------
# grafana

def dashboard_path(root):
    return os.path.join(root, "deploy/grafana/octo-webhooks.json")


def dashboard_queries(dashboard):
    """[(where, expr)] of every panel target and query variable."""
    queries = []
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []) or []:
            queries.append((f"panel {panel.get('id')} '{panel.get('title')}' {target.get('refId')}",
                            target.get("expr", "")))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var.get("query")
            text = query.get("query", "") if isinstance(query, dict) else (query or "")
            m = re.fullmatch(r"label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\)", text.strip())
            if not m:
                problem(f"variable {var.get('name')}: query {text!r} is not label_values(<selector>, <label>)")
                continue
            queries.append((f"variable {var.get('name')}", m.group(1)))
    return queries


def overlapping(a, b):
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def promtool_parse(promtool, exprs):
    """Parses every (name, expr) with `promtool check rules`; returns its output on failure."""
    rules = [{"record": name, "expr": expr} for name, expr in exprs]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dashboard_queries.yml")
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
        run = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
        if run.returncode != 0:
            return run.stdout + run.stderr
    return None


def cmd_grafana(args):
    root = args.root
    contract, families = load_contract(root)
    text = read(dashboard_path(root))
    try:
        dashboard = json.loads(text)
    except json.JSONDecodeError as e:
        problem(f"deploy/grafana/octo-webhooks.json: invalid JSON: {e}")
        return
    if not isinstance(dashboard.get("schemaVersion"), int) or dashboard["schemaVersion"] < 36:
        problem("schemaVersion must be an integer >= 36")
    for key in ("uid", "title"):
        if not dashboard.get(key):
            problem(f"dashboard has no {key}")
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problem("no 'datasource' variable of type datasource for prometheus")

    panels = dashboard.get("panels", [])
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)) or not all(isinstance(i, int) for i in ids):
        problem(f"panel ids must be unique integers: {ids}")
    for i, a in enumerate(panels):
        for b in panels[i + 1:]:
            if overlapping(a["gridPos"], b["gridPos"]):
                problem(f"panels {a['id']} and {b['id']} overlap")
        if a["gridPos"]["x"] + a["gridPos"]["w"] > 24:
            problem(f"panel {a['id']} is wider than the grid")
    used_vars = set()
    for p in panels:
        if p.get("type") == "row":
            continue
        where = f"panel {p.get('id')} '{p.get('title')}'"
        if (p.get("datasource") or {}).get("uid") != "${datasource}":
            problem(f"{where}: datasource must be ${{datasource}}")
        targets = p.get("targets") or []
        if not targets:
            problem(f"{where}: no query")
        refs = [t.get("refId") for t in targets]
        if len(refs) != len(set(refs)):
            problem(f"{where}: duplicate refIds {refs}")
        for t in targets:
            if not (t.get("expr") or "").strip():
                problem(f"{where} {t.get('refId')}: empty expr")
            if (t.get("datasource") or {}).get("uid") != "${datasource}":
                problem(f"{where} {t.get('refId')}: datasource must be ${{datasource}}")
            used_vars.update(re.findall(r"\$\{?([A-Za-z][A-Za-z0-9_]*)", t.get("expr", "")))
    for name in sorted(used_vars - set(variables)):
        problem(f"queries use ${name}, which is no dashboard variable")

    queries = dashboard_queries(dashboard)
    referenced = set()
    for where, expr in queries:
        referenced |= check_expression(where, grafana_to_promql(expr), contract)
    # Every family of the contract is on the dashboard.
    for family, kind in sorted(families.items()):
        names = {family} if kind != "histogram" else {family + s for s in ("_bucket", "_sum", "_count")}
        if not names & referenced:
            problem(f"no panel shows {family}")
    # promtool parses every query.
    exprs = [(f"dashboard_query_{i}", grafana_to_promql(e)) for i, (_, e) in enumerate(queries)]
    failure = promtool_parse(args.promtool, exprs)
    if failure:
        named = {int(n) for n in re.findall(r"dashboard_query_(\d+)", failure)}
        problem("promtool check rules refused a dashboard query:\n" + failure + "\n" +
                "\n".join(f"  dashboard_query_{i}: {queries[i][0]}: {queries[i][1]}" for i in sorted(named)))
    # The committed JSON is the generator's output.
    generator = os.path.join(root, "deploy/grafana/generate_dashboard.py")
    run = subprocess.run([sys.executable, generator], capture_output=True, text=True)
    if run.returncode != 0:
        problem(f"generate_dashboard.py failed: {run.stderr}")
    elif run.stdout != text:
        problem("deploy/grafana/octo-webhooks.json is not what generate_dashboard.py writes: run\n"
                "  deploy/grafana/generate_dashboard.py > deploy/grafana/octo-webhooks.json")
    print(f"grafana: {len(panels)} panels, {len(queries)} queries parsed by promtool")


def cmd_metric_names(args):
    names = set()
    for _, _, rule in load_rules(args.root):
        names |= promql_references(rule["expr"])[0]
    dashboard = json.loads(read(dashboard_path(args.root)))
    for _, expr in dashboard_queries(dashboard):
        names |= promql_references(grafana_to_promql(expr))[0]
    for name in sorted(names):
        print(name)


# --------------------------------------------------------------------------
# manifests: YAML, compose, Kubernetes, Dockerfiles

PROCESSES = {
    # image name: (Dockerfile, CMake targets it must build and copy)
    "gateway": ("deploy/docker/gateway.Dockerfile", ["octo-gateway"]),
    "subscription": ("deploy/docker/subscription.Dockerfile", ["octo-subscription", "octo-admin"]),
    "delivery": ("deploy/docker/delivery.Dockerfile", ["octo-delivery"]),
}
# In debian:bookworm-slim already (apt itself depends on them).
BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}


def yaml_files(root):
    found = []
    for dirpath, _, files in os.walk(os.path.join(root, "deploy")):
        for f in files:
            if f.endswith((".yml", ".yaml")):
                found.append(os.path.join(dirpath, f))
    return sorted(found)


def install_deps_packages(root):
    text = read(os.path.join(root, "scripts/install-deps.sh"))
    m = re.search(r"PACKAGES=\((.*?)\n\)", text, re.S)
    words = set()
    for line in m.group(1).splitlines():
        words.update(line.split("#", 1)[0].split())
    return words


def dockerfile_stages(text):
    """[(FROM line, [apt packages], [instructions])] of a Dockerfile."""
    text = re.sub(r"\\\n", " ", text)
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction = line.split()[0].upper()
        if instruction == "FROM":
            stages.append((line, [], []))
            continue
        if not stages:
            continue
        stages[-1][2].append(line)
        if instruction == "RUN":
            for cmd in re.split(r"&&|;", line[3:]):
                words = cmd.split()
                if words[:2] == ["apt-get", "install"]:
                    stages[-1][1].extend(w for w in words[2:] if not w.startswith("-"))
    return stages


def path_aliases(path):
    """A library's path, its real path, and their usrmerge aliases (/lib <-> /usr/lib)."""
    found = [path, os.path.realpath(path)]
    for c in list(found):
        if c.startswith("/usr/lib/"):
            found.append(c[len("/usr"):])
        elif c.startswith("/lib/"):
            found.append("/usr" + c)
    return found


def owners(paths):
    """{path: Debian package} for the paths dpkg knows, in one dpkg-query call (it is slow)."""
    run = subprocess.run(["dpkg-query", "-S"] + sorted(set(paths)), capture_output=True, text=True)
    result = {}
    for line in run.stdout.splitlines():
        packages, _, path = line.partition(": ")
        result[path.strip()] = packages.split(",")[0].split(":")[0].strip()
    return result


def needed_packages(binaries):
    """{binary: {package: [sonames]}} of the binaries' DT_NEEDED libraries."""
    libraries = {}
    for binary in binaries:
        readelf = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True)
        needed = re.findall(r"\(NEEDED\).*\[(.+?)\]", readelf.stdout)
        ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
        paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
        libraries[binary] = [(soname, paths.get(soname)) for soname in needed]
    known = owners(a for libs in libraries.values() for _, p in libs if p for a in path_aliases(p))
    result = {}
    for binary, libs in libraries.items():
        packages = result.setdefault(binary, {})
        for soname, path in libs:
            package = next((known[a] for a in path_aliases(path) if a in known), None) if path else None
            if package is None:
                problem(f"{binary}: cannot tell which package provides {soname} ({path})")
                continue
            packages.setdefault(package, []).append(soname)
    return result


BUILD_DOCKERFILE = "deploy/docker/build.Dockerfile"
# The tag build.Dockerfile's image gets, which the runtime images copy from.
BUILD_IMAGE = "octo-webhooks/build:dev"
# Images of compose's third-party services built from Debian's packages where
# no registry is reachable (scripts/containers.sh): they too end as non-root.
OTHER_DOCKERFILES = ["deploy/docker/postgres.Dockerfile", "deploy/docker/prometheus.Dockerfile"]


def resolve_args(text):
    """The Dockerfile with ${NAME} and $NAME of the ARGs declared before the
    first FROM replaced by their defaults (what FROM sees without --build-arg)."""
    defaults = {}
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0].upper() == "FROM":
            break
        if words[0].upper() == "ARG" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            defaults[name] = value
    for name, value in defaults.items():
        text = text.replace("${" + name + "}", value)
        text = re.sub(rf"\${name}\b", value, text)
    return text


def ends_as_non_root(path, lines):
    users = [l.split()[1] for l in lines if l.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problem(f"{path}: the runtime stage must end as a non-root USER")


def built_path(binary, build_dir):
    """Where CMake puts a binary, relative to the build directory (/src/build in the image)."""
    return "/src/build/" + os.path.relpath(binary, build_dir)


def check_build_dockerfile(root, binaries, build_dir):
    """The one image that compiles every binary (each copied by a runtime image)."""
    full = os.path.join(root, BUILD_DOCKERFILE)
    if not os.path.exists(full):
        problem(f"{BUILD_DOCKERFILE} is missing")
        return
    stages = dockerfile_stages(resolve_args(read(full)))
    if len(stages) != 1 or not re.match(r"FROM debian:bookworm$", stages[0][0]):
        problem(f"{BUILD_DOCKERFILE}: one stage, FROM debian:bookworm (ARG BASE_IMAGE's default)")
        return
    _, apt, lines = stages[0]
    build_packages = install_deps_packages(root)
    for pkg in apt:
        if pkg not in build_packages:
            problem(f"{BUILD_DOCKERFILE}: build package {pkg} is not in scripts/install-deps.sh")
    joined = "\n".join(lines)
    for _, targets in PROCESSES.values():
        for target in targets:
            if not re.search(rf"--target [^\n]*\b{re.escape(target)}\b", joined):
                problem(f"{BUILD_DOCKERFILE}: does not build the CMake target {target}")
            binary = binaries.get(target)
            if not binary:
                continue
            built = built_path(binary, build_dir)[len("/src/"):]
            if not re.search(rf"strip [^\n]*(?<!\S){re.escape(built)}(?!\S)", joined):
                problem(f"{BUILD_DOCKERFILE}: does not strip {built}")


def check_dockerfiles(root, binaries, build_dir, sanitized=False):
    check_build_dockerfile(root, binaries, build_dir)
    for image, (path, targets) in PROCESSES.items():
        full = os.path.join(root, path)
        if not os.path.exists(full):
            problem(f"{path} is missing")
            continue
        stages = dockerfile_stages(resolve_args(read(full)))
        if len(stages) < 2:
            problem(f"{path}: not a multi-stage build")
            continue
        build_from, _, build_lines = stages[0]
        run_from, run_apt, run_lines = stages[-1]
        if not re.match(rf"FROM {re.escape(BUILD_IMAGE)}\s+AS\s+build$", build_from, re.I) or build_lines:
            problem(f"{path}: the first stage must be 'FROM {BUILD_IMAGE} AS build' (ARG BUILD_IMAGE's "
                    f"default), the image of {BUILD_DOCKERFILE}, and do nothing else")
        if not re.match(r"FROM debian:bookworm(-slim)?$", run_from):
            problem(f"{path}: the runtime stage must be FROM debian:bookworm(-slim) (ARG BASE_IMAGE's default)")
        for pkg in run_apt:
            if pkg.endswith("-dev") or pkg in ("build-essential", "cmake"):
                problem(f"{path}: the runtime stage installs the build package {pkg}")
            known = subprocess.run(["dpkg-query", "-W", pkg], capture_output=True).returncode == 0 or \
                subprocess.run(["apt-cache", "show", pkg], capture_output=True).returncode == 0
            if not known:
                problem(f"{path}: runtime package {pkg} is unknown to dpkg and apt")
        ends_as_non_root(path, run_lines)
        joined = "\n".join(run_lines)
        for target in targets:
            binary = binaries.get(target)
            if not binary:
                problem(f"{path}: no --binary {target}=PATH given to check its libraries")
                continue
            built = built_path(binary, build_dir)
            if f"COPY --from=build {built} /usr/local/bin/{target}" not in joined:
                problem(f"{path}: does not copy {built} (where CMake builds {target}) to /usr/local/bin")
            if sanitized:
                continue
            for package, sonames in sorted(needed_packages([binary])[binary].items()):
                if package not in run_apt and package not in BASE_IMAGE_PACKAGES:
                    problem(f"{path}: {target} needs {', '.join(sonames)} from package {package}, "
                            f"which the runtime stage does not install")
        if not any(l.upper().startswith("ENTRYPOINT") and targets[0] in l for l in run_lines):
            problem(f"{path}: ENTRYPOINT is not {targets[0]}")
    for path in OTHER_DOCKERFILES:
        full = os.path.join(root, path)
        if not os.path.exists(full):
            problem(f"{path} is missing")
            continue
        ends_as_non_root(path, dockerfile_stages(resolve_args(read(full)))[-1][2])


def compose_default(value):
    """A compose value with its ${VAR:-default} substitutions at their defaults."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", str(value))


def check_compose(root):
    path = os.path.join(root, "deploy/compose.yaml")
    doc = yaml.safe_load(read(path))
    services = doc.get("services", {})
    pg = services.get("postgres", {})
    if not compose_default(pg.get("image", "")).startswith("postgres:15"):
        problem("compose.yaml: postgres must run PostgreSQL 15")
    for image, (dockerfile, _) in PROCESSES.items():
        svc = services.get(image)
        if not svc:
            problem(f"compose.yaml: no service {image}")
            continue
        build = svc.get("build", {})
        context = os.path.normpath(os.path.join(root, "deploy", build.get("context", ".")))
        if context != os.path.normpath(root) or build.get("dockerfile") != dockerfile:
            problem(f"compose.yaml: {image} must build {dockerfile} with the repository as context")
        if svc.get("read_only") is not True or svc.get("cap_drop") != ["ALL"] or \
                svc.get("user", "10001").split(":")[0] in ("root", "0"):
            problem(f"compose.yaml: {image} must run read_only, with cap_drop [ALL], not as root")
        env = svc.get("environment", {})
        allow = "OCTO_GATEWAY_ALLOW_NON_LOOPBACK" if image == "gateway" else "OCTO_ALLOW_NON_LOOPBACK"
        if env.get(allow) != "true":
            problem(f"compose.yaml: {image} listens on 0.0.0.0 and needs {allow}: \"true\"")
        for key, value in env.items():
            if re.search(r"password\s*=", str(value), re.I):
                problem(f"compose.yaml: {image} {key} carries a password")
    if "prometheus" not in services:
        problem("compose.yaml: no prometheus service")
    for svc_name, svc in services.items():
        for port in svc.get("ports", []):
            if not compose_default(port).startswith("127.0.0.1:"):
                problem(f"compose.yaml: {svc_name} publishes {port} beyond the host's loopback")
    for svc_name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                if not os.path.exists(os.path.join(root, "deploy", source)):
                    problem(f"compose.yaml: {svc_name} mounts {source}, which does not exist")
    # The scrape targets of prometheus.yml are compose's services.
    prom = yaml.safe_load(read(os.path.join(root, "deploy/prometheus/prometheus.yml")))
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    for job in ("octo-gateway", "octo-subscription", "octo-delivery"):
        if job not in jobs:
            problem(f"prometheus.yml: no job {job}")
            continue
        for sc in jobs[job].get("static_configs", []):
            for target in sc["targets"]:
                host = target.split(":")[0]
                if host not in services:
                    problem(f"prometheus.yml: {job} target {target} is no compose service")


def check_network_policies(policies, deployments, kustomization):
    """Ingress denied by default; every Deployment has a policy of its own
    that names the ports it opens; all of them in the kustomization."""
    files = {f for f, _ in policies}
    for f in files:
        if f not in kustomization.get("resources", []):
            problem(f"kustomization.yaml: {f} (NetworkPolicies) is not a resource")
    objects = [o for _, o in policies]
    if not any(o["spec"].get("podSelector") == {} and "Ingress" in o["spec"].get("policyTypes", [])
               and not o["spec"].get("ingress") for o in objects):
        problem("kubernetes: no default-deny ingress NetworkPolicy (podSelector {}, no ingress rule)")
    for name, d in deployments.items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        own = [o for o in objects if o["spec"].get("podSelector", {}).get("matchLabels") and
               all(labels.get(k) == v for k, v in o["spec"]["podSelector"]["matchLabels"].items())]
        if not own:
            problem(f"Deployment {name}: no NetworkPolicy selects it")
        ports = {p["containerPort"] for c in d["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        opened = {p.get("port") for o in own for rule in o["spec"].get("ingress", [])
                  for p in rule.get("ports", [])}
        if not opened <= ports:
            problem(f"NetworkPolicy of {name}: opens ports {sorted(opened - ports)} it does not serve")
        if ports - opened:
            problem(f"NetworkPolicy of {name}: ports {sorted(ports - opened)} unreachable (probes, scrapes)")


def check_grpc_callers_secret(deployments):
    """Every process mounts the internal credentials' Secret
    (docs/operations.md, "Internal credentials")."""
    for name, d in deployments.items():
        volumes = d["spec"]["template"]["spec"].get("volumes", [])
        if not any(v.get("secret", {}).get("secretName") == "octo-webhooks-grpc-callers" for v in volumes):
            problem(f"Deployment {name}: does not mount the Secret octo-webhooks-grpc-callers")


def check_kubernetes(root):
    kdir = os.path.join(root, "deploy/kubernetes")
    objects = []
    for f in sorted(os.listdir(kdir)):
        if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml":
            for doc in yaml.safe_load_all(read(os.path.join(kdir, f))):
                if doc:
                    objects.append((f, doc))
    by_kind = {}
    for f, o in objects:
        for key in ("apiVersion", "kind", "metadata"):
            if key not in o:
                problem(f"kubernetes/{f}: an object without {key}")
        by_kind.setdefault(o.get("kind"), []).append((f, o))
    kustomization = yaml.safe_load(read(os.path.join(kdir, "kustomization.yaml")))
    for resource in kustomization.get("resources", []):
        if not os.path.exists(os.path.join(kdir, resource)):
            problem(f"kustomization.yaml: {resource} does not exist")
    if by_kind.get("Secret"):
        problem("kubernetes: Secrets are referenced, never committed")
    configmaps = {o["metadata"]["name"]: o for _, o in by_kind.get("ConfigMap", [])}
    deployments = {o["metadata"]["name"]: o for _, o in by_kind.get("Deployment", [])}
    for name in ("octo-gateway", "octo-subscription", "octo-delivery"):
        if name not in deployments:
            problem(f"kubernetes: no Deployment {name}")
    for name, d in deployments.items():
        spec = d["spec"]
        pod = spec["template"]
        labels = pod["metadata"].get("labels", {})
        if any(labels.get(k) != v for k, v in spec["selector"]["matchLabels"].items()):
            problem(f"Deployment {name}: selector does not match the pod labels")
        psc = pod["spec"].get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            problem(f"Deployment {name}: runAsNonRoot must be true")
        for c in pod["spec"]["containers"]:
            where = f"Deployment {name} container {c['name']}"
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in c:
                    problem(f"{where}: no {probe}")
            csc = c.get("securityContext", {})
            if csc.get("allowPrivilegeEscalation") is not False or csc.get("readOnlyRootFilesystem") is not True:
                problem(f"{where}: needs allowPrivilegeEscalation false and readOnlyRootFilesystem true")
            if "requests" not in c.get("resources", {}):
                problem(f"{where}: no resource requests (the autoscaler and the scheduler need them)")
            for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = c.get(probe_name)
                if not probe:
                    continue
                if "grpc" in probe and probe["grpc"]["port"] not in ports.values():
                    problem(f"{where}: {probe_name} grpc port {probe['grpc']['port']} is no container port")
                if "httpGet" in probe and probe["httpGet"]["port"] not in ports and \
                        probe["httpGet"]["port"] not in ports.values():
                    problem(f"{where}: {probe_name} port {probe['httpGet']['port']} is no container port")
            if name == "octo-gateway":
                if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz" or \
                        c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                    problem(f"{where}: readiness /readyz and liveness /healthz")
            else:
                if "grpc" not in c.get("readinessProbe", {}):
                    problem(f"{where}: the readiness probe must be the gRPC health check")
            for env_from in c.get("envFrom", []):
                ref = env_from.get("configMapRef", {}).get("name")
                if ref and ref not in configmaps:
                    problem(f"{where}: envFrom ConfigMap {ref} is not in the manifests")
            for env in c.get("env", []):
                source = env.get("valueFrom", {})
                if "value" in env and re.search(r"password", str(env["value"]), re.I):
                    problem(f"{where}: {env['name']} carries a password; use a secretKeyRef")
                ref = source.get("configMapKeyRef", {}).get("name")
                if ref and ref not in configmaps:
                    problem(f"{where}: ConfigMap {ref} is not in the manifests")
            if name != "octo-gateway" and not any(
                    e.get("name") == "OCTO_DATABASE_URL" and "secretKeyRef" in e.get("valueFrom", {})
                    for e in c.get("env", [])):
                problem(f"{where}: OCTO_DATABASE_URL must come from a Secret reference")

    def selects(selector, name):
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        return all(pod_labels.get(k) == v for k, v in selector.items())

    services = {o["metadata"]["name"]: o for _, o in by_kind.get("Service", [])}
    for kind in ("Service", "PodDisruptionBudget"):
        names = set()
        for _, o in by_kind.get(kind, []):
            selector = o["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            matched = [n for n in deployments if selects(selector, n)]
            if len(matched) != 1:
                problem(f"{kind} {o['metadata']['name']}: selects {matched or 'no Deployment'}")
            names.update(matched)
            if kind == "Service":
                d = deployments.get(matched[0]) if matched else None
                port_names = {p["name"] for c in d["spec"]["template"]["spec"]["containers"]
                              for p in c.get("ports", [])} if d else set()
                for p in o["spec"]["ports"]:
                    if p.get("targetPort") not in port_names:
                        problem(f"Service {o['metadata']['name']}: targetPort {p.get('targetPort')} is no container port")
        for name in deployments:
            if name not in names:
                problem(f"Deployment {name} has no {kind}")
    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    if not any(o["spec"]["scaleTargetRef"]["name"] == "octo-delivery" for _, o in hpas):
        problem("kubernetes: no HorizontalPodAutoscaler for octo-delivery")
    if "replicas" in deployments.get("octo-delivery", {}).get("spec", {}):
        problem("Deployment octo-delivery: leave replicas to the HorizontalPodAutoscaler")
    check_network_policies(by_kind.get("NetworkPolicy", []), deployments, kustomization)
    check_grpc_callers_secret(deployments)
    monitors = by_kind.get("ServiceMonitor", [])
    if not monitors:
        problem("kubernetes: no ServiceMonitor")
    for _, m in monitors:
        selector = m["spec"]["selector"]["matchLabels"]
        selected = [s for s in services.values()
                    if all(s["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]
        scraped = {e["port"] for e in m["spec"]["endpoints"]}
        for name in ("octo-gateway", "octo-subscription", "octo-delivery"):
            svc = services.get(name)
            if svc not in selected:
                problem(f"ServiceMonitor {m['metadata']['name']} does not select Service {name}")
            elif not {p["name"] for p in svc["spec"]["ports"]} & scraped:
                problem(f"ServiceMonitor {m['metadata']['name']} scrapes no port of Service {name}")
    return configmaps


def cmd_manifests(args):
    root = args.root
    count = 0
    for path in yaml_files(root):
        try:
            count += sum(1 for _ in yaml.safe_load_all(read(path)))
        except yaml.YAMLError as e:
            problem(f"{os.path.relpath(path, root)}: invalid YAML: {e}")
    if PROBLEMS:
        return
    check_compose(root)
    check_kubernetes(root)
    if not args.build_dir:
        problem("manifests needs --build-dir (the CMake build directory of the --binary paths)")
        return
    check_dockerfiles(root, args.binaries, args.build_dir, args.sanitized_binaries)
    if args.sanitized_binaries:
        print("manifests: sanitized binaries: their libraries were not compared with the runtime stages "
              "(the Release build's run of this test does that)")
    print(f"manifests: {len(yaml_files(root))} YAML files ({count} documents), "
          f"{1 + len(PROCESSES) + len(OTHER_DOCKERFILES)} Dockerfiles checked")


def cmd_kubernetes_prometheus_config(args):
    """Writes the scrape config of the ConfigMap out and runs `promtool check config`."""
    path = os.path.join(args.root, "deploy/kubernetes/prometheus-scrape-config.yaml")
    cm = yaml.safe_load(read(path))
    config = yaml.safe_load(cm["data"]["prometheus.yml"])
    jobs = [j["job_name"] for j in config["scrape_configs"]]
    if sorted(jobs) != ["octo-delivery", "octo-gateway", "octo-subscription"]:
        problem(f"prometheus-scrape-config.yaml: jobs {jobs}")
    with tempfile.TemporaryDirectory() as tmp:
        rules = os.path.join(tmp, "rules")
        os.mkdir(rules)
        for f in ("alerts.yml", "recording.yml"):
            shutil.copy(os.path.join(args.root, "deploy/prometheus", f), rules)
        config["rule_files"] = [os.path.join(rules, "*.yml")]
        # Debian's promtool is built without Kubernetes service discovery
        # ("field kubernetes_sd_configs not found"): check the section's shape
        # here and let promtool check the rest (relabelling, rule files) with
        # an equivalent static target.
        for job in config["scrape_configs"]:
            sds = job.pop("kubernetes_sd_configs", None)
            if not sds or any(sd.get("role") != "endpoints" or
                              sd.get("namespaces", {}).get("names") != ["octo-webhooks"] for sd in sds):
                problem(f"prometheus-scrape-config.yaml: {job['job_name']}: kubernetes_sd_configs must "
                        "discover the endpoints of the namespace octo-webhooks")
            job["static_configs"] = [{"targets": ["placeholder:80"]}]
        out = os.path.join(tmp, "prometheus.yml")
        with open(out, "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f)
        run = subprocess.run([args.promtool, "check", "config", out], capture_output=True, text=True)
        if run.returncode != 0:
            problem("promtool check config refused prometheus-scrape-config.yaml:\n" + run.stdout + run.stderr)
    print(f"kubernetes prometheus config: jobs {', '.join(sorted(jobs))}")


# --------------------------------------------------------------------------
# systemd

UNIT_HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
    "PrivateDevices": "yes", "DynamicUser": "yes", "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": "",
}
SKIP = 77  # ctest SKIP_RETURN_CODE


def units(root):
    d = os.path.join(root, "deploy/systemd")
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".service"))


def unit_settings(text):
    settings = {}
    for line in text.splitlines():
        line = line.strip()
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def cmd_systemd(args):
    root = args.root
    found = units(root)
    names = [os.path.basename(u)[: -len(".service")] for u in found]
    if sorted(names) != ["octo-delivery", "octo-gateway", "octo-subscription"]:
        problem(f"deploy/systemd: units {names}")
    for unit in found:
        name = os.path.basename(unit)
        settings = unit_settings(read(unit))
        for key, value in UNIT_HARDENING.items():
            if value not in settings.get(key, []):
                problem(f"{name}: {key}={value} missing")
        if not any(v.endswith(f"/{name[:-len('.service')]}.env") for v in settings.get("EnvironmentFile", [])):
            problem(f"{name}: no EnvironmentFile for its own settings")
        example = os.path.join(root, "deploy/systemd", name[: -len(".service")] + ".env.example")
        if not os.path.exists(example):
            problem(f"{name}: no {os.path.basename(example)}")
    if PROBLEMS:
        return 0
    tool = shutil.which(args.systemd_analyze)
    if not tool:
        print("systemd-analyze not found (Debian package systemd): the units' static checks passed, "
              "`systemd-analyze verify` was not run", file=sys.stderr)
        return SKIP
    with tempfile.TemporaryDirectory() as tmp:
        # verify checks that ExecStart exists: point it at the built binaries.
        for unit in found:
            name = os.path.basename(unit)[: -len(".service")]
            binary = args.binaries.get(name)
            if not binary:
                problem(f"no --binary {name}=PATH")
                continue
            text = re.sub(r"^ExecStart=\S+", f"ExecStart={binary}", read(unit), flags=re.M)
            with open(os.path.join(tmp, os.path.basename(unit)), "w", encoding="utf-8") as f:
                f.write(text)
        copies = sorted(os.path.join(tmp, os.path.basename(u)) for u in found)
        run = subprocess.run([tool, "verify"] + copies, capture_output=True, text=True, cwd=tmp)
        output = (run.stdout + run.stderr).strip()
        if run.returncode != 0 or output:
            problem("systemd-analyze verify:\n" + output)
        run = subprocess.run([tool, "security", "--offline=true", "--threshold=20"] + copies,
                             capture_output=True, text=True, cwd=tmp)
        for m in re.finditer(r"Overall exposure level for (\S+): ([\d.]+)", run.stdout):
            print(f"systemd-analyze security: {m.group(1)} exposure {m.group(2)}")
            if float(m.group(2)) > 2.0:
                problem(f"{m.group(1)}: exposure {m.group(2)} above 2.0 (systemd-analyze security)")
        if "Overall exposure level" not in run.stdout:
            problem("systemd-analyze security --offline printed no exposure level:\n" + run.stdout + run.stderr)
    print(f"systemd: {len(found)} units verified")
    return 0


# --------------------------------------------------------------------------
# config-doc

# The files that define each process's flags (ABSL_FLAG); the --pg_* flags
# both services share are pg_flags.h's.
MAIN_FILES = {
    "octo-gateway": ["gateway/main.cc"],
    "octo-subscription": ["services/subscription/main.cc", "services/common/pg_flags.cc"],
    "octo-delivery": ["services/delivery/service_config.cc", "services/common/pg_flags.cc"],
}


def config_rows(root):
    """[(process, flag, env)] of the tables of docs/configuration.md."""
    rows = []
    for line in read(os.path.join(root, "docs/configuration.md")).splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or cells[0] in ("Process",):
            continue
        flags = re.findall(r"`(--[a-z0-9_\-]+)", cells[1])
        envs = re.findall(r"`(OCTO_[A-Z0-9_]+|PG[A-Z]+)`", cells[2])
        processes = re.findall(r"octo-[a-z]+", cells[0])
        for process in processes:
            for flag in flags or [None]:
                rows.append((process, flag, tuple(envs)))
    return rows


def documented_env_vars(root):
    return {e for _, _, envs in config_rows(root) for e in envs}


def source_flags(path):
    """[(flag, [env vars])] of the ABSL_FLAGs of a main.cc."""
    text = read(path)
    flags = []
    for m in re.finditer(r"ABSL_FLAG\(\s*[^,]+,\s*([a-z0-9_]+)\s*,(.*?)\);\n", text, re.S):
        flags.append(("--" + m.group(1), sorted(set(re.findall(r"OCTO_[A-Z0-9_]+", m.group(2))))))
    return flags


def cmd_config_doc(args):
    root = args.root
    rows = config_rows(root)
    documented = {(p, f) for p, f, _ in rows}
    envs_of = {}
    for p, f, envs in rows:
        envs_of.setdefault((p, f), set()).update(envs)
    total = 0
    for process, mains in MAIN_FILES.items():
        for main in mains:
            flags = source_flags(os.path.join(root, main))
            if not flags:
                problem(f"{main}: no ABSL_FLAG found")
            for flag, envs in flags:
                total += 1
                if (process, flag) not in documented:
                    problem(f"docs/configuration.md: no row for {process} {flag} ({main})")
                    continue
                for env in envs:
                    if env not in envs_of[(process, flag)]:
                        problem(f"docs/configuration.md: {process} {flag} row does not name {env}")
    # octo-admin: its own parser; its flags are in its usage text.
    admin = read(os.path.join(root, "tools/admin/admin_args.cc"))
    for flag in ("--target", "--timeout", "--output"):
        if flag not in admin:
            problem(f"tools/admin no longer has {flag}: update docs/configuration.md and this check")
        if ("octo-admin", flag) not in documented:
            problem(f"docs/configuration.md: no row for octo-admin {flag}")
    for env in re.findall(r"EnvOr\(\"(OCTO_[A-Z0-9_]+)\"", read(os.path.join(root, "tools/admin/main.cc"))):
        if env not in documented_env_vars(root):
            problem(f"docs/configuration.md: octo-admin's {env} is not documented")
    # Every OCTO_* variable the deployment files set is documented.
    documented_envs = documented_env_vars(root)
    for dirpath, _, files in os.walk(os.path.join(root, "deploy")):
        for f in files:
            path = os.path.join(dirpath, f)
            try:
                text = read(path)
            except UnicodeDecodeError:
                continue
            for env in sorted(set(re.findall(r"\b(OCTO_[A-Z0-9_]+)\b", text))):
                if env not in documented_envs:
                    problem(f"{os.path.relpath(path, root)}: sets {env}, which docs/configuration.md does not document")
    print(f"config-doc: {total} flags of 3 processes and octo-admin documented")


# --------------------------------------------------------------------------
# prometheus-rule: the PrometheusRule of deploy/kubernetes, generated from the rules

PROMETHEUS_RULE = "deploy/kubernetes/prometheusrule.yaml"
PROMETHEUS_RULE_HEADER = """\
# For the Prometheus Operator (CRD monitoring.coreos.com/v1): the alert and
# recording rules of deploy/prometheus/alerts.yml and recording.yml as one
# PrometheusRule. Generated, do not edit; after changing the rules run
#   /usr/bin/python3 tests/deploy/check_deploy.py prometheus-rule --root . --write
# (ctest deploy_prometheus_rule fails while this file differs from them).
# Not in kustomization.yaml, like servicemonitor.yaml: apply it where the CRD
# exists, with the label your Prometheus' ruleSelector asks for.
"""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def prometheus_rule(root):
    groups = []
    for name in ("alerts.yml", "recording.yml"):
        groups += yaml.safe_load(read(os.path.join(root, "deploy/prometheus", name)))["groups"]
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "octo-webhooks", "namespace": "octo-webhooks",
                     "labels": {"app.kubernetes.io/part-of": "octo-webhooks"}},
        "spec": {"groups": groups},
    }
    return PROMETHEUS_RULE_HEADER + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=1000)


def cmd_prometheus_rule(args):
    text = prometheus_rule(args.root)
    path = os.path.join(args.root, PROMETHEUS_RULE)
    if args.write:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {PROMETHEUS_RULE}")
        return 0
    if not os.path.exists(path) or read(path) != text:
        problem(f"{PROMETHEUS_RULE} differs from deploy/prometheus/alerts.yml and recording.yml: run\n"
                f"  /usr/bin/python3 tests/deploy/check_deploy.py prometheus-rule --root . --write")
    # The embedded rules are the ones promtool tests: same groups, same data.
    groups = yaml.safe_load(text)["spec"]["groups"]
    expected = []
    for name in ("alerts.yml", "recording.yml"):
        expected += yaml.safe_load(read(os.path.join(args.root, "deploy/prometheus", name)))["groups"]
    if groups != expected:
        problem(f"{PROMETHEUS_RULE}: its groups are not those of the rule files")
    print(f"prometheus-rule: {sum(len(g['rules']) for g in groups)} rules in {len(groups)} groups")
    return 0


# --------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["rules", "grafana", "manifests", "kubernetes-prometheus-config",
                                            "systemd", "config-doc", "metric-names", "prometheus-rule"])
    parser.add_argument("--write", action="store_true", help="prometheus-rule: write the file")
    parser.add_argument("--root", required=True, help="the repository")
    parser.add_argument("--promtool", default="promtool")
    parser.add_argument("--systemd-analyze", default="systemd-analyze")
    parser.add_argument("--build-dir", help="the CMake build directory the --binary paths are in")
    parser.add_argument("--binary", action="append", default=[],
                        help="NAME=PATH of a built executable (octo-gateway=/.../octo-gateway)")
    parser.add_argument("--sanitized-binaries", action="store_true",
                        help="manifests: the binaries carry ASan/UBSan, which the images never build with, "
                             "so their libraries say nothing about a runtime stage and are not compared")
    args = parser.parse_args()
    args.binaries = dict(b.split("=", 1) for b in args.binary)
    if args.command in ("grafana", "kubernetes-prometheus-config") and not shutil.which(args.promtool):
        print(f"promtool not found ({args.promtool}): install the Debian package prometheus "
              "(scripts/install-deps.sh)", file=sys.stderr)
        return 1
    commands = {
        "rules": cmd_rules,
        "grafana": cmd_grafana,
        "manifests": cmd_manifests,
        "kubernetes-prometheus-config": cmd_kubernetes_prometheus_config,
        "systemd": cmd_systemd,
        "config-doc": cmd_config_doc,
        "metric-names": cmd_metric_names,
        "prometheus-rule": cmd_prometheus_rule,
    }
    status = commands[args.command](args) or 0
    for p in PROBLEMS:
        print(f"FAIL: {p}", file=sys.stderr)
    return 1 if PROBLEMS else status


if __name__ == "__main__":
    sys.exit(main())
