#!/usr/bin/env python3
"""Checks the limit tables of docs/operations.md ("Certificates, tokens and limits",
"Limits") against the code: every flag a row names exists in its process's sources with
the default the row states, and every fixed constant it names (kMax...) has that value.

A row is | Limit | Flag | Default | When it is hit |; the Flag cell holds `--flag`s or
"fixed (`kConstant`, ...)", the Default cell one backticked value per flag or constant, in
order: `65536`, `5s`, `16 MiB`, `127.0.0.1:9103`; "(required)" stands for an empty default.

Usage: check_limits_doc.py --root REPO
"""
import argparse
import glob
import os
import re
import sys

SECTION = "### Limits"
# The files defining each table's flags; a table is the #### heading above it.
FLAG_FILES = {
    "octo-gateway": ["gateway/main.cc"],
    "octo-subscription": ["services/subscription/main.cc"],
    "octo-delivery": ["services/delivery/service_config.cc"],
    "PostgreSQL, both services": ["services/common/pg_flags.cc"],
}
CONSTANT_GLOBS = ["gateway/*.h", "gateway/*.cc", "services/*/*.h", "services/*/*.cc"]
PG_OPTIONS = "services/common/pg_connection.h"
UNITS = {"KiB": 1 << 10, "MiB": 1 << 20, "bytes": 1}
DURATIONS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
ABSL_DURATIONS = {"Milliseconds": 0.001, "Seconds": 1, "Minutes": 60, "Hours": 3600}

problems = []


def read(root, path):
    with open(os.path.join(root, path), encoding="utf-8") as f:
        return f.read()


def arithmetic(expr):
    """The value of an integer expression such as `16 << 20` or `5 * 24`, else None."""
    expr = expr.strip()
    if not re.fullmatch(r"[0-9\s+*<()-]+", expr):
        return None
    return eval(expr, {"__builtins__": {}})  # digits and operators only, checked above


def code_value(expr, pg_options):
    """A default expression of the code as a number, a string or a bool."""
    expr = " ".join(expr.split())
    m = re.search(r"PgConnectionOptions\{\}\.([a-z_]+)", expr)
    if m:
        return code_value(pg_options[m.group(1)], pg_options)
    m = re.search(r"absl::(Milliseconds|Seconds|Minutes|Hours)\(([^)]*)\)", expr)
    if m:
        return arithmetic(m.group(2)) * ABSL_DURATIONS[m.group(1)]
    m = re.search(r"Env(?:Or|OrInt|Bool)\(\s*\"[A-Z0-9_]+\"\s*,\s*(\"[^\"]*\"|[^)]+)\)", expr)
    if m:
        value = m.group(1).strip()
        if value.startswith('"'):
            value = value[1:-1]
            number = re.fullmatch(r"[0-9.]+", value)
            return float(value) if number else value
        if value in ("true", "false"):
            return value == "true"
        return arithmetic(value)
    return arithmetic(expr)


def doc_value(text):
    """A Default cell's value in the code's terms (seconds for durations, bytes for sizes)."""
    text = text.strip()
    if text == "(required)":
        return ""
    m = re.fullmatch(r"([0-9.]+)\s*(KiB|MiB|bytes)", text)
    if m:
        return float(m.group(1)) * UNITS[m.group(2)]
    m = re.fullmatch(r"([0-9.]+)(ms|s|m|h)", text)
    if m:
        return float(m.group(1)) * DURATIONS[m.group(2)]
    if re.fullmatch(r"[0-9.]+", text):
        return float(text)
    return text


def same(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) < 1e-9
    return a == b


def first_argument(text):
    """`text` up to its first comma outside parentheses and strings: the flag's default."""
    depth, quoted = 0, False
    for i, c in enumerate(text):
        if quoted:
            quoted = c != '"' or text[i - 1] == "\\"
        elif c == '"':
            quoted = True
        elif c in "({":
            depth += 1
        elif c in ")}":
            depth -= 1
        elif c == "," and depth == 0:
            return text[:i]
    return text


def flag_defaults(root, files, pg_options):
    """{--flag: default} of the ABSL_FLAGs in `files`."""
    flags = {}
    for path in files:
        text = read(root, path)
        for m in re.finditer(r"ABSL_FLAG\(\s*[^,]+,\s*([a-z0-9_]+)\s*,(.*?)\);\n", text, re.S):
            flags["--" + m.group(1)] = code_value(first_argument(m.group(2)), pg_options)
    return flags


def constants(root):
    """{kName: [values]} of `constexpr ... kName = <integer expression>;` in the sources."""
    found = {}
    for pattern in CONSTANT_GLOBS:
        for path in glob.glob(os.path.join(root, pattern)):
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for m in re.finditer(r"constexpr\s+[\w:]+\s+(k[A-Za-z0-9]+)\s*=\s*([^;{]+);", text):
                value = arithmetic(m.group(2))
                if value is not None:
                    found.setdefault(m.group(1), []).append(value)
    return found


def pg_option_defaults(root):
    text = read(root, PG_OPTIONS)
    body = text[text.index("struct PgConnectionOptions"):]
    return dict(re.findall(r"\s([a-z_]+)\s*=\s*([^;]+);", body[: body.index("};")]))


def limit_tables(root):
    """[(table, line number, flag cell, default cell)] of the Limits section."""
    rows, table, inside = [], None, False
    for number, line in enumerate(read(root, "docs/operations.md").splitlines(), 1):
        if line.startswith("#"):
            if line == SECTION:
                inside = True
            elif inside and not line.startswith("####"):
                break
            elif inside:
                table = line.lstrip("#").strip()
            continue
        if not inside or not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] != "Limit":
            rows.append((table, number, cells[1], cells[2]))
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    root = parser.parse_args().root
    pg_options = pg_option_defaults(root)
    known_constants = constants(root)
    rows = limit_tables(root)
    checked = 0
    for table, number, flag_cell, default_cell in rows:
        where = f"docs/operations.md:{number}"
        if table not in FLAG_FILES:
            problems.append(f"{where}: table '{table}' is none of {sorted(FLAG_FILES)}")
            continue
        flags = re.findall(r"`(--[a-z0-9_]+)`", flag_cell)
        names = re.findall(r"`(k[A-Za-z0-9]+)`", flag_cell) if flag_cell.startswith("fixed") else []
        defaults = re.findall(r"`([^`]+)`", default_cell) or [default_cell]
        if not flags and not names:
            continue  # a setting that is no flag (a webhook's own fields)
        if len(defaults) != len(flags) + len(names):
            problems.append(f"{where}: {len(flags) + len(names)} flags or constants, {len(defaults)} defaults")
            continue
        source = flag_defaults(root, FLAG_FILES[table], pg_options)
        for flag, default in zip(flags, defaults):
            checked += 1
            if flag not in source:
                problems.append(f"{where}: {table} has no flag {flag}")
            elif not same(source[flag], doc_value(default)):
                problems.append(f"{where}: {flag} defaults to {source[flag]!r} in the code, the doc says {default}")
        for name, default in zip(names, defaults[len(flags):]):
            checked += 1
            values = known_constants.get(name, [])
            if not values:
                problems.append(f"{where}: no constant {name} in the sources")
            elif any(not same(v, doc_value(default)) for v in values):
                problems.append(f"{where}: {name} is {values} in the code, the doc says {default}")
    if checked < 40:
        problems.append(f"only {checked} flags and constants found in the Limits tables: did the section move?")
    for p in problems:
        print(f"PROBLEM: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"limits-doc: {checked} defaults of docs/operations.md match the code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
