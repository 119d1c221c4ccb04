#!/usr/bin/env python3
"""Checks that the code docs/receiving.md prints is the code of the files the
receiver-guide test runs: every ```js, ```python and ```go block must appear,
byte for byte, in docs/receiving/verify.mjs, verify.py and verify.go, and each
language must have a block. Usage: check_receiving_snippets.py <source root>"""
import pathlib
import re
import sys

FILES = {"js": "verify.mjs", "python": "verify.py", "go": "verify.go"}


def main(root: pathlib.Path) -> int:
    guide = (root / "docs" / "receiving.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```(\w+)\n(.*?)^```$", guide, flags=re.S | re.M)
    seen = set()
    failures = []
    for lang, code in blocks:
        if lang not in FILES:
            continue
        seen.add(lang)
        source = (root / "docs" / "receiving" / FILES[lang]).read_text(encoding="utf-8")
        if code not in source:
            first = code.splitlines()[0] if code else ""
            failures.append(f"a ```{lang} block (starting {first!r}) is not in docs/receiving/{FILES[lang]}")
    for lang in sorted(set(FILES) - seen):
        failures.append(f"docs/receiving.md has no ```{lang} block")
    for f in failures:
        print(f, file=sys.stderr)
    if not failures:
        print(f"ok: {len([b for b in blocks if b[0] in FILES])} snippets match their files")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1])))
