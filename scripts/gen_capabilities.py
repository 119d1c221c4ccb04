#!/usr/bin/python3
"""Derive the capability -> fields table from Ventrata's OCTO OpenAPI document.

Usage: scripts/gen_capabilities.py [--octo-types=<@octocloud/types src/types dir>]
           <ventrata-octo-openapi.yaml> > capability_fields.json

scripts/check_capabilities.sh runs it with both sources (a maintainer's
command, not part of the test run): with --octo-types, OCTO's own types are
the authority for the octo/* capabilities they describe, schema by schema
(see Walker and decide below); Ventrata's document supplies its vendor
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
that one too. Pass --x-capability-data-only to read only x-capability-data.

The same rule holds wherever a schema appears: a Product's fields get the
same capabilities at "product", "packageInclude.product" and
"gifts[].offerComparisons[].product" (the types' per-interface table is
applied at every occurrence, and members only the types declare, such as
Product.questions, are added at every occurrence). A field the types
describe gets the types' capabilities; a vendor capability of Ventrata's is
added only where one of those grants it (ALIASES), and an octo/* one only
where the types do not describe that capability at all (decide()). A field
the types do not describe keeps every capability Ventrata annotates on it:
the projection keeps such a field for a webhook with any one of them.

The walk descends into annotated properties too (a capability field may
contain fields of another capability). A schema is entered at most
MAX_SCHEMA_DEPTH times on the path from the root (a booking's
packageBookings[] are bookings; Product -> options[] -> packageIncludes[]
-> includes[].product is a product). Where the walk stops (the schema would
be entered a third time), it records the place under "_recursion": the
stopped path and the path of the same schema's previous entry, whose rules
the projection applies there again, so a resource nested however deep is
gated like the resource (only where the previous entry has fields in the
table; elsewhere there is nothing to gate).

Output: deterministic JSON (keys and path lists sorted, 2-space indent):
{"_recursion": {kind: {stopped path: previous entry's path}},
 "availability": {cap: [paths]}, "booking": {...}, "order": {...}, "product": {...}}
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
# How many times one schema may be on the path from the root (see the module
# docstring): a booking's packageBookings[] are bookings, a product's
# options[].packageIncludes[].includes[].product is a product.
MAX_SCHEMA_DEPTH = 2


# {capability a webhook has: capabilities it also grants}; the same as
# kCapabilityAliases in services/delivery/payload/capabilities.h.
ALIASES = {"octo/content": {"ventrata/content"}}


def load_octo_types(types_dir):
    """The output of octo_types_capabilities.py for `types_dir`."""
    import subprocess
    script = __file__.replace("gen_capabilities.py", "octo_types_capabilities.py")
    return json.loads(subprocess.run([sys.executable, script, types_dir], check=True,
                                     capture_output=True, text=True).stdout)


def decide(ventrata_caps, types_caps, described):
    """The capabilities of one property of one schema.

    `types_caps`: what the types interface of the same name gives the member
    (None when the types do not declare it, an empty set when they declare it
    without a capability). The types decide the octo/* capabilities they
    describe; Ventrata keeps its vendor capabilities unless the types give
    the field to an octo/* capability that does not grant them (Ventrata
    files Product.includeTax under ventrata/content too; the types say
    octo/pricing, so a webhook with only ventrata/content does not get it),
    and the octo/* ones the types do not describe. A field the types lack,
    or declare without a capability, stays gated as Ventrata gates it:
    sending less is the safe side.
    """
    if not types_caps:
        return set(ventrata_caps)
    out = set(types_caps)
    for cap in ventrata_caps:
        if cap.startswith("octo/"):
            if cap not in described:
                out.add(cap)
        elif any(cap in ALIASES.get(t, ()) for t in types_caps):
            out.add(cap)
    return out


def merge_octo_types(ventrata, types):
    """The per-path rule once more over the types' own root tables.

    The walk already applied the types schema by schema (see Walker); this
    adds what the types give at paths the walk reaches under other schema
    names, with the same rule as decide().
    """
    described = set(types["_described"])
    merged = {}
    for kind, caps in ventrata.items():
        owners = {}
        for cap, paths in caps.items():
            for p in paths:
                owners.setdefault(p, set()).add(cap)
        types_owner = {}
        for cap, paths in types.get(kind, {}).items():
            for p in paths:
                types_owner.setdefault(p, set()).add(cap)
        for p, tcaps in types_owner.items():
            owners[p] = decide(owners.get(p, set()), tcaps, described)
        out = {}
        for p, pcaps in owners.items():
            for cap in pcaps:
                out.setdefault(cap, set()).add(p)
        merged[kind] = {cap: sorted(paths) for cap, paths in out.items()}
    return merged


def gated_cuts(cuts, caps):
    """The cuts whose previous entry has a path of the table at or below it."""
    paths = {p for ps in caps.values() for p in ps}

    def under(p, entry):
        return entry == "" or p == entry or p.startswith(entry + ".") or p.startswith(entry + "[")

    return {cut: entry for cut, entry in cuts.items() if any(under(p, entry) for p in paths)}


def join(path, rel):
    return rel if not path else path + "." + rel


class Walker:
    """Walks Ventrata's schema tree, collecting {capability: paths}.

    With the types (`types`, from octo_types_capabilities.py), each property
    of a schema that OCTO's types declare as an interface of the same name
    (Product, Option, Unit, Booking, UnitItem, Gift, ...) gets its
    capabilities from decide(), wherever the schema appears: at the root or
    nested (booking.product, order.bookings[].packageInclude.product,
    order.gifts[].offerComparisons[].product). Members only the types
    declare (Product.questions) are added with their paths from the types,
    at every place the schema appears.
    """

    def __init__(self, schemas, use_codegen_tags, types):
        self.schemas = schemas
        self.use_codegen_tags = use_codegen_tags
        self.interfaces = types.get("_interfaces", {}) if types else {}
        self.described = set(types.get("_described", ())) if types else set()
        self.cuts = {}  # stopped path -> path of the same schema's previous entry

    def resolve(self, ref):
        if not ref.startswith(REF_PREFIX):
            raise SystemExit("unsupported $ref: " + ref)
        name = ref[len(REF_PREFIX):]
        return name, self.schemas[name]

    def capabilities_of(self, node):
        """Capabilities annotated on a property schema (or its inline allOf parts)."""
        caps = set()
        nodes = [node] + [n for k in ("allOf", "anyOf", "oneOf") for n in node.get(k, []) if "$ref" not in n]
        keys = ("x-capability-data",) + (("x-oapi-codegen-extra-tags",) if self.use_codegen_tags else ())
        for n in nodes:
            for key in keys:
                ann = n.get(key)
                if isinstance(ann, dict) and isinstance(ann.get("capability"), str):
                    caps.add(ann["capability"])
        return caps

    def property_names(self, node, seen=()):
        """Every property a schema declares, through $ref and allOf/anyOf/oneOf."""
        names = set((node.get("properties") or {}).keys())
        if "$ref" in node:
            name, target = self.resolve(node["$ref"])
            if name not in seen:
                names |= self.property_names(target, seen + (name,))
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key, []):
                names |= self.property_names(sub, seen)
        return names

    def types_caps(self, schema_names, prop):
        """What the innermost types interface among `schema_names` declaring `prop` gives it."""
        for name in reversed(schema_names):
            members = self.interfaces.get(name, {}).get("members", {})
            if prop in members:
                return set(members[prop])
        return None

    def add_types_only_members(self, name, target, path, out):
        interface = self.interfaces.get(name)
        if not interface:
            return
        declared = self.property_names(target)
        for cap, rel_paths in interface["table"].items():
            for rel in rel_paths:
                member = rel.split(".", 1)[0].split("[", 1)[0]
                if member not in declared:
                    out.setdefault(cap, set()).add(join(path, rel))

    def walk(self, node, path, stack, out, schema_names=()):
        """Visit a schema node sitting at `path` (the value's own path).

        `stack`: (schema name, path entered at) of the $refs followed from
        the root. `schema_names`: the schemas ($ref names) this node is part
        of, whose properties are the value's properties. Where the walk stops
        at a schema already entered MAX_SCHEMA_DEPTH times, self.cuts maps
        `path` to that schema's last entry.
        """
        if not isinstance(node, dict):
            return
        if "$ref" in node:
            name, target = self.resolve(node["$ref"])
            entries = [at for entered, at in stack if entered == name]
            if len(entries) >= MAX_SCHEMA_DEPTH:
                self.cuts[path] = entries[-1]
                return
            self.add_types_only_members(name, target, path, out)
            self.walk(target, path, stack + ((name, path),), out, schema_names + (name,))
            # Siblings of $ref (OpenAPI 3.1 style) are still read below.
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key, []):
                self.walk(sub, path, stack, out, schema_names)
        if isinstance(node.get("items"), dict):
            for cap in self.capabilities_of(node["items"]):
                # An annotated item schema: the whole array belongs to it.
                out.setdefault(cap, set()).add(path)
            self.walk(node["items"], path + "[]", stack, out)
        for prop, sub in (node.get("properties") or {}).items():
            if any(c in prop for c in ".[]"):
                raise SystemExit("property name not representable in a path: " + prop)
            prop_path = join(path, prop)
            if isinstance(sub, dict):
                caps = decide(self.capabilities_of(sub), self.types_caps(schema_names, prop), self.described)
                for cap in caps:
                    out.setdefault(cap, set()).add(prop_path)
            self.walk(sub, prop_path, stack, out)


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    octo_types = [a.split("=", 1)[1] for a in argv[1:] if a.startswith("--octo-types=")]
    flags = {a for a in argv[1:] if a.startswith("--") and not a.startswith("--octo-types=")}
    unknown = flags - {"--x-capability-data-only"}
    if len(args) != 1 or unknown:
        sys.stderr.write(__doc__)
        return 2
    with open(args[0], encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    types = load_octo_types(octo_types[0]) if octo_types else None
    walker = Walker(doc["components"]["schemas"], "--x-capability-data-only" not in flags, types)
    table, cuts = {}, {}
    for kind, schema_name in RESOURCES.items():
        out = {}
        walker.cuts = {}
        walker.walk({"$ref": REF_PREFIX + schema_name}, "", (), out)
        out.pop("", None)
        table[kind] = {cap: sorted(p for p in paths if p) for cap, paths in out.items()}
        cuts[kind] = walker.cuts
    if types:
        table = merge_octo_types(table, types)
    table["_recursion"] = {kind: gated_cuts(cuts[kind], table[kind]) for kind in RESOURCES}
    json.dump(table, sys.stdout, indent=2, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
