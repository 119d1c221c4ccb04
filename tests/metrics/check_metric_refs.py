#!/usr/bin/env python3
"""Checks that every metric a dashboard or an alert rule names exists.

Reads Prometheus text-format expositions (what /metrics of the running
processes answered) and Grafana dashboards (*.json) and Prometheus rule or
rule-test files (*.yml, *.yaml); extracts the octo_*, grpc_* and process_*
metric names from their PromQL (Grafana targets' "expr", templating "query"
and "definition"; rules' "expr"; rule tests' "expr" and "series") and
fails, naming each one, when a name is not exposed. Names defined by a
recording rule ("record:") count as existing.

Usage:
  check_metric_refs.py --metrics scraped.txt [--metrics more.txt] PATH...
PATH is a file or a directory (its *.json, *.yml and *.yaml, recursively);
a PATH that does not exist, or a directory holding none of them, is an
error: a check that read nothing must not pass.
Exit status: 0 all found, 1 some missing, 2 usage, unreadable or absent input.
"""
import argparse
import json
import os
import re
import sys

import yaml

PREFIXES = ("octo_", "grpc_", "process_")
# A metric name of ours, not inside a longer identifier or a recording rule
# name (octo:...), and not a function call.
NAME_RE = re.compile(r"(?<![A-Za-z0-9_:$.])((?:octo|grpc|process)_[A-Za-z0-9_]+)(?![A-Za-z0-9_:(])")
STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
MATCHERS_RE = re.compile(r"\{[^{}]*\}")
GROUPING_RE = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")

JSON_KEYS = {"expr", "query", "definition"}
YAML_KEYS = {"expr", "series"}


def exposed_names(text):
    """Sample names and family names of a text-format exposition."""
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("# TYPE ") or line.startswith("# HELP "):
            parts = line.split()
            if len(parts) >= 3:
                names.add(parts[2])
            continue
        if line.startswith("#"):
            continue
        names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def names_in_promql(expr):
    """The octo_/grpc_/process_ metric names a PromQL expression selects."""
    expr = STRING_RE.sub('""', expr)  # label values, regexes, strings
    expr = GROUPING_RE.sub("", expr)  # by (grpc_code) ... : label names
    prev = None
    while prev != expr:  # label matchers {grpc_service="..."}, innermost first
        prev = expr
        expr = MATCHERS_RE.sub("", expr)
    return set(NAME_RE.findall(expr))


def walk(node, keys, found, records):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "record" and isinstance(value, str):
                records.add(value)
            if key in keys and isinstance(value, str):
                found.append(value)
            else:
                walk(value, keys, found, records)
    elif isinstance(node, list):
        for item in node:
            walk(item, keys, found, records)


def files_under(path):
    if os.path.isfile(path):
        return [path]
    out = []
    for root, _, files in os.walk(path):
        for f in files:
            if f.endswith((".json", ".yml", ".yaml")):
                out.append(os.path.join(root, f))
    return sorted(out)


def references(path):
    """(expressions, recorded names) of one dashboard or rules file."""
    with open(path, encoding="utf-8") as f:
        if path.endswith(".json"):
            docs, keys = [json.load(f)], JSON_KEYS
        else:
            docs, keys = list(yaml.safe_load_all(f)), YAML_KEYS
    exprs, records = [], set()
    for doc in docs:
        walk(doc, keys, exprs, records)
    return exprs, records


def check(metrics_texts, paths):
    """Returns (missing, checked): missing is [(file, name, expr)]."""
    exposed = set()
    for text in metrics_texts:
        exposed |= exposed_names(text)
    per_file = []
    records = set()
    for path in paths:
        for f in files_under(path):
            exprs, recs = references(f)
            records |= recs
            per_file.append((f, exprs))
    missing, checked = [], 0
    for f, exprs in per_file:
        for expr in exprs:
            for name in sorted(names_in_promql(expr)):
                checked += 1
                if name not in exposed and name not in records:
                    missing.append((f, name, expr))
    return missing, checked


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", action="append", required=True, help="a scraped exposition file")
    parser.add_argument("paths", nargs="*", help="dashboard / rules files or directories")
    args = parser.parse_args(argv)
    try:
        texts = []
        for m in args.metrics:
            with open(m, encoding="utf-8") as f:
                texts.append(f.read())
        for p in args.paths:
            if not os.path.exists(p):
                raise ValueError(f"{p}: no such file or directory")
            if not files_under(p):
                raise ValueError(f"{p}: holds no dashboard or rule file (*.json, *.yml, *.yaml)")
        missing, checked = check(texts, args.paths)
    except (OSError, ValueError, yaml.YAMLError) as e:
        print(f"check_metric_refs: {e}", file=sys.stderr)
        return 2
    for f, name, expr in missing:
        print(f"{f}: metric {name} is not exposed by any process (in: {expr.strip()})")
    print(f"check_metric_refs: {checked} metric references checked, {len(missing)} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
