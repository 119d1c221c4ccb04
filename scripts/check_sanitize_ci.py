#!/usr/bin/env python3
"""Checks the list of test programs that scripts/test.sh --sanitize-ci builds.

That run builds only the programs of OCTO_SANITIZE_CI_PROGRAMS (scripts/lib.sh)
and runs the tests of some labels. A test of those labels whose program is not
in the list would not run, and nothing would say so: this fails instead. It
also fails for a listed program with no test of those labels (a stale list).
Run it after that build: a test whose executable is missing then belongs to a
program that is not in the list.

ctest lists a GoogleTest program that is not built as one unlabelled test,
PROGRAM_NOT_BUILT; its label comes from <build>/octo_test_programs.txt, written
by octo_discover_tests (top-level CMakeLists.txt).

Usage: check_sanitize_ci.py BUILD_DIR LABELS PROGRAM...
  LABELS: the labels, separated by | (unit|gateway|e2e)
"""
import json
import os
import subprocess
import sys

NOT_BUILT = "_NOT_BUILT"


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    build_dir, labels, programs = argv[1], set(argv[2].split("|")), set(argv[3:])
    listing = subprocess.run(["ctest", "--test-dir", build_dir, "--show-only=json-v1"],
                             check=True, capture_output=True, text=True).stdout
    registered = {}
    with open(os.path.join(build_dir, "octo_test_programs.txt"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                program, label = line.split()
                registered[program] = label
    errors, seen = [], set()
    for test in json.loads(listing)["tests"]:
        name = test["name"]
        if name.endswith(NOT_BUILT):
            program = name[:-len(NOT_BUILT)]
            if program not in registered:
                errors.append(f"{program}: a GoogleTest program registered without octo_discover_tests, "
                              "so its label is unknown")
                continue
            test_labels = {registered[program]}
        else:
            test_labels = set()
            for prop in test.get("properties", []):
                if prop["name"] == "LABELS":
                    test_labels = set(prop["value"])
            # ctest gives no command when the executable does not exist.
            program = os.path.basename(test["command"][0]) if test.get("command") else None
        if not test_labels & labels:
            continue
        seen.add(program)
        if program is None:
            errors.append(f"{name} (labels {', '.join(sorted(test_labels))}): its program is not built, "
                          "so it is not in OCTO_SANITIZE_CI_PROGRAMS (scripts/lib.sh)")
        elif program not in programs:
            errors.append(f"{name} (labels {', '.join(sorted(test_labels))}) runs {program}, "
                          "which is not in OCTO_SANITIZE_CI_PROGRAMS (scripts/lib.sh)")
    for program in sorted(programs - seen):
        errors.append(f"{program} is in OCTO_SANITIZE_CI_PROGRAMS but has no test labelled "
                      f"{' or '.join(sorted(labels))}")
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        sys.exit("the sanitizer run's list of test programs does not match the tests' labels: "
                 "add the program to OCTO_SANITIZE_CI_PROGRAMS (scripts/lib.sh), or label it")


if __name__ == "__main__":
    main(sys.argv)
