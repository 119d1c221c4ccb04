#!/usr/bin/python3
"""Derive the capability -> fields table from Ventrata's OCTO OpenAPI document.

Usage: scripts/gen_capabilities.py [--octo-types=<@octocloud/types src/types dir>]
           <ventrata-octo-openapi.yaml> > capability_fields.json

scripts/check_capabilities.sh runs it with both sources (a maintainer's
command, not part of the test run): with --octo-types, OCTO's own types are
the authority for the octo/* capabilities they describe (see
merge_octo_types below); Ventrata's document supplies its vendor
capabilities and the octo/* ones the types say nothing about.

For each resource delivered by a webhook (booking, order, availability,
product: the component schemas Booking, Order, Availability, Product, i.e.
the resource rendered with every capability) the script walks the schema
tree, following $ref and allOf/anyOf/oneOf, entering array items as a `[]`
path segment, and records for every property annotated with a capability
the path it occupies, e.g. octo/pricing -> booking "unitItems[].pricing".

Annotations read: `x-capability-data: {capability: X}` and, for the handful
of properties whose only annotation is the Go code generator's
`x-oapi-codegen-extra-tags: {capability: X}` (octo/packages and
octo/identities fields such as Booking.packageBookings, Order.identity),
that one too; a property annotated with two different capabilities is
listed under both (it stays when the webhook has either). Pass
--x-capability-data-only to read only x-capability-data.

The walk descends into annotated properties too (a capability field may
contain fields of another capability). A schema is not re-entered while it
is already on the path from the root (Product -> options[] -> ... ->
includes[].product is a cycle): the nested copy is covered only down to
that point.

Output: deterministic JSON (keys and path lists sorted, 2-space indent):
{"availability": {cap: [paths]}, "booking": {...}, "order": {...}, "product": {...}}
"""
import json
import sys

import yaml

RESOURCES = {
    "booking": "Booking",
    "order": "Order",
    "availability": "Availability",
    "product": "Product",
}
REF_PREFIX = "#/components/schemas/"


# {capability a webhook has: capabilities it also grants}; the same as
# kCapabilityAliases in services/delivery/payload/capabilities.h.
ALIASES = {"octo/content": {"ventrata/content"}}


def merge_octo_types(ventrata, types_dir):
    """octo/* from OCTO's types where they describe the capability.

    - an octo/* capability the types describe takes their paths, plus
      Ventrata's paths for it that the types do not give to another
      capability (a field the types lack, or declare without a capability,
      stays gated as Ventrata gates it: sending less is the safe side);
    - an octo/* capability they do not describe keeps Ventrata's paths;
    - a vendor capability keeps Ventrata's paths, less those the types give
      to an octo/* capability that does not grant it (Ventrata files
      Product.includeTax under ventrata/content too; the types say
      octo/pricing, so a webhook with only ventrata/content does not get it).
    """
    import subprocess
    script = __file__.replace("gen_capabilities.py", "octo_types_capabilities.py")
    types = json.loads(subprocess.run([sys.executable, script, types_dir], check=True,
                                      capture_output=True, text=True).stdout)
    described = set(types.pop("_described"))
    types.pop("_known")
    merged = {}
    for kind, caps in ventrata.items():
        owner = {}
        for cap, paths in types.get(kind, {}).items():
            for p in paths:
                owner.setdefault(p, set()).add(cap)
        out = {}
        for cap, paths in types.get(kind, {}).items():
            out[cap] = set(paths)
        for cap, paths in caps.items():
            if cap in described:
                out.setdefault(cap, set()).update(p for p in paths if cap in owner.get(p, {cap}))
                continue
            if not cap.startswith("octo/"):
                paths = [p for p in paths
                         if not owner.get(p) or any(cap in ALIASES.get(o, ()) for o in owner[p])]
            if paths:
                out[cap] = set(paths)
        merged[kind] = {cap: sorted(paths) for cap, paths in out.items()}
    return merged


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    octo_types = [a.split("=", 1)[1] for a in argv[1:] if a.startswith("--octo-types=")]
    flags = {a for a in argv[1:] if a.startswith("--") and not a.startswith("--octo-types=")}
    unknown = flags - {"--x-capability-data-only"}
    if len(args) != 1 or unknown:
        sys.stderr.write(__doc__)
        return 2
    use_codegen_tags = "--x-capability-data-only" not in flags
    with open(args[0], encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    schemas = doc["components"]["schemas"]

    def resolve(ref):
        if not ref.startswith(REF_PREFIX):
            raise SystemExit("unsupported $ref: " + ref)
        name = ref[len(REF_PREFIX):]
        return name, schemas[name]

    def capabilities_of(node):
        """Capabilities annotated on a property schema (or its inline allOf parts)."""
        caps = set()
        nodes = [node] + [n for k in ("allOf", "anyOf", "oneOf") for n in node.get(k, []) if "$ref" not in n]
        for n in nodes:
            for key in ("x-capability-data",) + (("x-oapi-codegen-extra-tags",) if use_codegen_tags else ()):
                ann = n.get(key)
                if isinstance(ann, dict) and isinstance(ann.get("capability"), str):
                    caps.add(ann["capability"])
        return caps

    def walk(node, path, stack, out):
        """Visit a schema node sitting at `path` (the value's own path)."""
        if not isinstance(node, dict):
            return
        if "$ref" in node:
            name, target = resolve(node["$ref"])
            if name in stack:
                return
            walk(target, path, stack + (name,), out)
            # Siblings of $ref (OpenAPI 3.1 style) are still read below.
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key, []):
                walk(sub, path, stack, out)
        if isinstance(node.get("items"), dict):
            item_path = path + "[]"
            for cap in capabilities_of(node["items"]):
                # An annotated item schema: the whole array belongs to it.
                out.setdefault(cap, set()).add(path)
            walk(node["items"], item_path, stack, out)
        for prop, sub in (node.get("properties") or {}).items():
            if any(c in prop for c in ".[]"):
                raise SystemExit("property name not representable in a path: " + prop)
            prop_path = prop if not path else path + "." + prop
            if isinstance(sub, dict):
                for cap in capabilities_of(sub):
                    out.setdefault(cap, set()).add(prop_path)
            walk(sub, prop_path, stack, out)

    table = {}
    for kind, schema_name in RESOURCES.items():
        out = {}
        walk(schemas[schema_name], "", (schema_name,), out)
        out.pop("", None)
        table[kind] = {cap: sorted(p for p in paths if p) for cap, paths in out.items()}
    if octo_types:
        table = merge_octo_types(table, octo_types[0])
    json.dump(table, sys.stdout, indent=2, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
