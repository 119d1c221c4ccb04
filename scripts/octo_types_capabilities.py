#!/usr/bin/python3
"""The octo/* capability -> fields table, from OCTO's TypeScript types.

Usage: scripts/octo_types_capabilities.py <dir with the package's src/types/*.ts>

OCTO's npm package @octocloud/types (1.5.x) declares every resource as an
interface extending one small interface per capability:

    export interface Product extends ProductContent, ProductPricing,
        ProductQuestions, ProductGoogle, ProductPackage { id: string; ... }
    export interface ProductQuestions { questions?: Question[]; }

A base interface whose name is a prefix followed by a capability suffix
(Content, Pricing, Questions, Pickup, Offers, ...) adds the fields of that
capability; a base without a prefix (PricingUnit extends Pricing) is plain
inheritance. Starting from Booking, Order, Availability and Product, this
walks every member, entering member types that are interfaces (arrays as
`[]` path segments, Nullable<T> and `T | null` unwrapped), and records the
path of each member a capability interface contributes. An interface is not
re-entered while it is on the path from the root (cycles).

Output (stdout): deterministic JSON, {kind: {capability: [sorted paths]}},
plus "_described": the sorted capabilities the types describe fields for,
"_known": {kind: every path the types declare, capability or not}, and
"_interfaces": for every interface with capability fields somewhere below
it, {"members": {member: [capabilities, possibly none]}, "table":
{capability: [paths relative to the interface]}}, so that the generator can
apply the types wherever the same schema appears nested in Ventrata's tree.
Used by scripts/gen_capabilities.py --octo-types.
"""
import json
import os
import re
import sys

ROOTS = {"booking": "Booking", "order": "Order", "availability": "Availability", "product": "Product"}
# Interface name suffix -> capability id (CapabilityId in Capability.ts).
SUFFIXES = {
    "CardPayment": "octo/cardPayments",
    "Content": "octo/content",
    "Pricing": "octo/pricing",
    "Pickup": "octo/pickups",
    "Pickups": "octo/pickups",
    "Offers": "octo/offers",
    "Offer": "octo/offers",
    "Cart": "octo/cart",
    "Questions": "octo/questions",
    "Resources": "octo/resources",
    "Gift": "octo/gifts",
    "Extras": "octo/extras",
    "Package": "octo/packages",
    "Google": "octo/google",
}


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def parse_interfaces(directory):
    """name -> (bases, [(member, type text)])."""
    interfaces = {}
    for file in sorted(os.listdir(directory)):
        if not file.endswith(".ts"):
            continue
        with open(os.path.join(directory, file), encoding="utf-8") as f:
            text = strip_comments(f.read())
        for m in re.finditer(r"\binterface\s+(\w+)(?:<[^>{]*>)?\s*(?:extends\s+([^{]+))?\{", text):
            depth, i = 1, m.end()
            while depth and i < len(text):
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            body = text[m.end():i - 1]
            bases = [re.sub(r"<.*", "", b).strip() for b in (m.group(2) or "").split(",") if b.strip()]
            members = []
            for line in re.split(r";|\n", flatten_braces(body)):
                mm = re.match(r"\s*(\w+)\??\s*:\s*(.+?)\s*$", line)
                if mm:
                    members.append((mm.group(1), mm.group(2)))
            interfaces[m.group(1)] = (bases, members)
    return interfaces


def flatten_braces(body):
    """Inline object types are opaque: `{ a: x; b: y }` -> `{}`."""
    out, depth = [], 0
    for c in body:
        if c == "{":
            depth += 1
            if depth == 1:
                out.append("{}")
        elif c == "}":
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


def element_type(type_text):
    """(interface name or None, is_array) of a member type."""
    t = type_text.strip()
    changed = True
    array = False
    while changed:
        changed = False
        for pattern in (r"^Nullable<(.*)>$", r"^Array<(.*)>$", r"^\((.*)\)$"):
            m = re.match(pattern, t)
            if m:
                array = array or pattern.startswith("^Array")
                t, changed = m.group(1).strip(), True
        parts = [p.strip() for p in t.split("|") if p.strip() not in ("null", "undefined")]
        if len(parts) == 1 and parts[0] != t:
            t, changed = parts[0], True
        if t.endswith("[]"):
            t, array, changed = t[:-2].strip(), True, True
    name = re.sub(r"<.*", "", t)
    return (name if re.fullmatch(r"\w+", name) else None), array


def capability_of(base):
    for suffix, capability in SUFFIXES.items():
        if base.endswith(suffix) and len(base) > len(suffix):
            return capability
    return None


def walk(interfaces, name, path, stack, out, inherited_cap=None):
    bases, members = interfaces[name]
    for base in bases:
        if base not in interfaces:
            continue
        capability = capability_of(base) or inherited_cap
        walk_members(interfaces, base, path, stack, out, capability)
    walk_members(interfaces, name, path, stack, out, inherited_cap, own_only=True)


def walk_members(interfaces, name, path, stack, out, capability, own_only=False):
    bases, members = interfaces[name]
    known = out.setdefault("", set())
    if not own_only:
        for base in bases:
            if base in interfaces:
                walk_members(interfaces, base, path, stack, out, capability_of(base) or capability)
    for member, type_text in members:
        member_path = member if not path else path + "." + member
        known.add(member_path)
        if capability:
            out.setdefault(capability, set()).add(member_path)
        target, array = element_type(type_text)
        if target in interfaces and target not in stack:
            walk(interfaces, target, member_path + ("[]" if array else ""), stack + (target,), out)


def per_interface(interfaces):
    """{interface: {"members": {m: [caps]}, "table": {cap: [relative paths]}}}."""
    result = {}
    for name in sorted(interfaces):
        out = {}
        walk(interfaces, name, "", (name,), out)
        known = out.pop("")
        if not out:
            continue
        members = {m: sorted(c for c, paths in out.items() if m in paths)
                   for m in sorted(known) if "." not in m and "[" not in m}
        result[name] = {"members": members, "table": {c: sorted(p) for c, p in sorted(out.items())}}
    return result


def main(argv):
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        sys.stderr.write(__doc__)
        return 2
    interfaces = parse_interfaces(argv[1])
    table, described, known = {}, set(), {}
    for kind, root in ROOTS.items():
        out = {}
        walk(interfaces, root, "", (root,), out)
        known[kind] = sorted(out.pop(""))
        table[kind] = {cap: sorted(paths) for cap, paths in out.items()}
        described.update(out)
    table["_described"] = sorted(described)
    table["_known"] = known
    table["_interfaces"] = per_interface(interfaces)
    json.dump(table, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
