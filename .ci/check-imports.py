#!/usr/bin/env python3
"""Checks the module import graph of every crate under crates/*/src, and the size of every .rs file.

Fails, listing each finding, when
  (a) modules of one crate import each other in a cycle (each cycle printed as a path, every edge with the
      file and line of its first reference);
  (b) a file outside crates/server/src/api/ names `api::v1` or `crate::api` (only lib.rs, which builds the
      router, and openapi.rs, which lists the handlers' paths, may);
  (c) crates/server/src/web/ names the API, or crates/server/src/api/ names web/ (api/mod.rs, the router
      that merges them, may);
  (d) a .rs file under crates/ is over 800 lines.

How the graph is read: a file is a module (src/lib.rs or main.rs the root, src/a.rs and src/a/mod.rs `a`,
src/a/b.rs `a::b`), and so is every inline `mod name { ... }` block. Every `crate::...` and `super::...`
path in code, grouped and multi-line `use` trees included, is resolved to the deepest module it names
(`crate::a::b::Item` is `a::b` when that module exists, else `a`); the module holding the reference imports
that module. References between a module and its own ancestors or descendants (a parent using its children,
a child its parent through `super::`) are structure, not imports, and are left out. Comments and string
literals are not code: a doc comment may name any path. Paths into other crates are the crate layering's
business (Cargo forbids cycles there) and are left out too.

Dependency-free Python 3. Run from anywhere: `python3 .ci/check-imports.py [--root DIR]`.
"""

import argparse
import re
import sys
from collections import deque
from pathlib import Path

MAX_LINES = 800
SERVER_SRC = "crates/server/src"
# The two files outside api/ that may name the handlers: the router and the OpenAPI document.
API_NAMERS = {f"{SERVER_SRC}/lib.rs", f"{SERVER_SRC}/openapi.rs"}
# The router that merges api/ and web/.
ROUTER = f"{SERVER_SRC}/api/mod.rs"

CHAR_LITERAL = re.compile(r"'(?:\\u\{[0-9a-fA-F]{1,6}\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'\n])'")
RAW_STRING = re.compile(r'b?r(#*)"')
INLINE_MOD = re.compile(r"\bmod\s+(?:r#)?([A-Za-z_]\w*)\s*\{")
PATH_START = re.compile(r"(?<![\w:])(crate|super)\s*::")
IDENT = re.compile(r"(?:r#)?[A-Za-z_]\w*|\*")
RENAME = re.compile(r"as\s+(?:r#)?[A-Za-z_]\w*")
NAMES_SERVER_API = re.compile(r"\bapi\s*::\s*v1\b|\bconsentry_server\s*::\s*api\b")


def strip_code(text):
    """The text with comments and string and char literals blanked out; newlines kept, so lines match."""
    out = []
    i, n = 0, len(text)

    def blank(s):
        return "".join(c if c == "\n" else " " for c in s)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(text[i:j]))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif (m := RAW_STRING.match(text, i)) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = text.find('"' + m.group(1), m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            out.append(blank(text[i:j]))
            i = j
        elif c == '"' or (c == "b" and text.startswith('b"', i) and (i == 0 or not text[i - 1].isalnum())):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(blank(text[i:j]))
            i = j
        elif c == "'" and (m := CHAR_LITERAL.match(text, i)):
            out.append(blank(m.group(0)))
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_tree(code, i):
    """Parses a path tail at `i` (just after `crate::` or `super::`): returns the segment lists it names,
    groups `{a, b::c}` expanded, and where it ends."""

    def ws(j):
        while j < len(code) and code[j].isspace():
            j += 1
        return j

    def tree(j):
        j = ws(j)
        if j < len(code) and code[j] == "{":
            paths, j = [], j + 1
            while True:
                j = ws(j)
                if j < len(code) and code[j] == "}":
                    return paths, j + 1
                sub, j = tree(j)
                paths.extend(sub)
                j = ws(j)
                if j < len(code) and code[j] == ",":
                    j += 1
                elif j < len(code) and code[j] == "}":
                    return paths, j + 1
                else:
                    return paths, j
        m = IDENT.match(code, j)
        if not m:
            return [[]], j
        seg, j = m.group(0).removeprefix("r#"), m.end()
        k = ws(j)
        if code.startswith("::", k):
            k = ws(k + 2)
            if k < len(code) and (code[k] == "{" or IDENT.match(code, k)):
                rest, j = tree(k)
                return [[seg] + r for r in rest], j
        # `use a::B as C`: the rename names nothing more.
        if (alias := RENAME.match(code, k)) is not None:
            j = alias.end()
        return [[seg]], j

    return tree(i)


class Module:
    def __init__(self, crate, path, file, start, end):
        self.crate, self.path, self.file, self.start, self.end = crate, path, file, start, end


def file_module(rel):
    """The module path of a file under src/ (a Path relative to src)."""
    parts = list(rel.with_suffix("").parts)
    if parts in (["lib"], ["main"]):
        return ()
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


def package_name(crate_dir):
    manifest = crate_dir / "Cargo.toml"
    if manifest.is_file():
        m = re.search(r'^\s*name\s*=\s*"([^"]+)"', manifest.read_text(encoding="utf-8"), re.M)
        if m:
            return m.group(1)
    return crate_dir.name


def show(path):
    return "::".join(path) or "crate"


def line_of(code, pos):
    return code.count("\n", 0, pos) + 1


def is_related(a, b):
    """Whether one module is the other's ancestor (or they are the same)."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def analyse_crate(root, crate_dir):
    """The crate's modules, its import edges {(from, to): (file, line, text)}, and every resolved reference
    as (file, line, from, to, text)."""
    src = crate_dir / "src"
    files = {}
    for f in sorted(src.rglob("*.rs")):
        files[f.relative_to(root).as_posix()] = strip_code(f.read_text(encoding="utf-8"))
    modules = set()
    # Per file: the inline module blocks as (start, end, path), innermost found by position.
    blocks = {}
    for rel, code in files.items():
        base = file_module(Path(rel).relative_to(src.relative_to(root)))
        modules.add(base)
        spans = []
        stack = []  # open braces: (position, inline module path or None)
        pending = {m.end() - 1: m.group(1) for m in INLINE_MOD.finditer(code)}
        for pos, c in enumerate(code):
            if c == "{":
                name = pending.get(pos)
                if name is not None:
                    enclosing = next((p for _, p in reversed(stack) if p is not None), base)
                    stack.append((pos, enclosing + (name,)))
                else:
                    stack.append((pos, None))
            elif c == "}" and stack:
                start, path = stack.pop()
                if path is not None:
                    spans.append((start, pos, path))
                    modules.add(path)
        blocks[rel] = (base, spans)

    def module_at(rel, pos):
        base, spans = blocks[rel]
        best = base
        for start, end, path in spans:
            if start <= pos <= end and len(path) > len(best):
                best = path
        return best

    def resolve(current, head, segments):
        if head == "crate":
            base = ()
        else:
            base = current[:-1]
            while segments and segments[0] == "super":
                base, segments = base[:-1], segments[1:]
        for seg in segments:
            if seg == "self":
                continue
            if base + (seg,) in modules:
                base = base + (seg,)
            else:
                break
        return base

    edges, refs = {}, []
    for rel, code in files.items():
        for m in PATH_START.finditer(code):
            current = module_at(rel, m.start())
            trees, end = parse_tree(code, m.end())
            text = re.sub(r"\s+", " ", code[m.start():end]).strip()
            line = line_of(code, m.start())
            for segments in trees:
                target = resolve(current, m.group(1), [s for s in segments if s])
                refs.append((rel, line, current, target, text))
                if not is_related(current, target):
                    edges.setdefault((current, target), (rel, line, text))
    return modules, edges, refs, files


def strongly_connected(nodes, succ):
    """Tarjan's algorithm, iterative: the components with more than one module."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(succ.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(succ.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    out.append(set(component))
    return out


def cycles(edges):
    """The knots (sets of modules that reach each other) and, for every edge inside one, the shortest cycle
    through it; each cycle once."""
    succ = {}
    for a, b in edges:
        succ.setdefault(a, set()).add(b)
    components = strongly_connected(set(succ) | {b for _, b in edges}, succ)
    found = []
    seen = set()
    for component in components:
        for a, b in sorted((a, b) for a, b in edges if a in component and b in component):
            # Shortest path b -> a inside the component closes the cycle a -> b -> ... -> a.
            prev, queue = {b: None}, deque([b])
            while queue and a not in prev:
                x = queue.popleft()
                for y in sorted(succ.get(x, ())):
                    if y in component and y not in prev:
                        prev[y] = x
                        queue.append(y)
            back, x = [], a
            while x is not None:
                back.append(x)
                x = prev[x]
            cycle = [a] + list(reversed(back))  # a, b, ..., a
            ring = cycle[:-1]
            k = ring.index(min(ring))
            canonical = tuple(ring[k:] + ring[:k])
            if canonical not in seen:
                seen.add(canonical)
                found.append(list(canonical) + [canonical[0]])
    return components, found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=Path(__file__).resolve().parent.parent, type=Path,
                        help="the workspace root (default: this repository)")
    parser.add_argument("--graph", action="store_true", help="also print every import between modules")
    args = parser.parse_args()
    root = args.root.resolve()

    problems = {"knots": [], "cycles": [], "api": [], "faces": [], "size": []}
    crates = sorted(d for d in (root / "crates").iterdir() if (d / "src").is_dir())
    totals = {"crates": len(crates), "files": 0, "modules": 0, "edges": 0}
    for crate_dir in crates:
        modules, edges, refs, files = analyse_crate(root, crate_dir)
        totals["files"] += len(files)
        totals["modules"] += len(modules)
        totals["edges"] += len(edges)
        name = package_name(crate_dir)
        if args.graph:
            for (a, b), (rel, line, text) in sorted(edges.items()):
                print(f"{name}: {show(a)} -> {show(b)}  {rel}:{line} `{text}`")
        knots, loops = cycles(edges)
        for knot in knots:
            problems["knots"].append(f"{name}: {{{', '.join(sorted(show(m) for m in knot))}}}")
        for cycle in loops:
            lines = [f"{name}: {' -> '.join(show(m) for m in cycle)}"]
            for a, b in zip(cycle, cycle[1:]):
                rel, line, text = edges[(a, b)]
                lines.append(f"    {show(a)} -> {show(b)}: {rel}:{line} `{text}`")
            problems["cycles"].append("\n".join(lines))
        if crate_dir.relative_to(root).as_posix() != "crates/server":
            continue
        # (b) and (c) by resolved reference, which also catches `super::api` and `super::web`.
        for rel, line, _, target, text in refs:
            inside_api = rel.startswith(f"{SERVER_SRC}/api/")
            if target[:1] == ("api",) and not inside_api and rel not in API_NAMERS:
                problems["api"].append(f"{rel}:{line} `{text}`")
            if target[:1] == ("api",) and rel.startswith(f"{SERVER_SRC}/web/"):
                problems["faces"].append(f"{rel}:{line} web/ names the API: `{text}`")
            if target[:1] == ("web",) and inside_api and rel != ROUTER:
                problems["faces"].append(f"{rel}:{line} api/ names web/: `{text}`")

    # (d) everywhere, and (b) by name in every .rs file outside the server's src/ (other crates, tests,
    # benches), where `crate::` is not the server: `api::v1` or `consentry_server::api`.
    for f in sorted((root / "crates").rglob("*.rs")):
        rel = f.relative_to(root).as_posix()
        text = f.read_text(encoding="utf-8")
        count = len(text.splitlines())
        if count > MAX_LINES:
            problems["size"].append(f"{rel}: {count} lines")
        if rel.startswith(f"{SERVER_SRC}/"):
            continue
        code = strip_code(text)
        for m in NAMES_SERVER_API.finditer(code):
            named = re.sub(r"\s+", "", m.group(0))
            problems["api"].append(f"{rel}:{line_of(code, m.start())} `{named}`")

    titles = {
        "knots": "modules that import each other, directly or round a cycle (one set per knot)",
        "cycles": "import cycles between modules (the shortest through each import that closes one)",
        "api": "the API named outside crates/server/src/api/ (only lib.rs and openapi.rs may)",
        "faces": "api/ and web/ naming each other (only api/mod.rs, the router, may)",
        "size": f".rs files over {MAX_LINES} lines",
    }
    failed = False
    for key, title in titles.items():
        found = sorted(set(problems[key]))
        if found:
            failed = True
            print(f"{title} ({len(found)}):")
            for p in found:
                print(f"  {p}")
    if failed:
        print("check-imports: FAILED", file=sys.stderr)
        return 1
    print(
        f"check-imports: ok, {totals['crates']} crates, {totals['files']} files, {totals['modules']} modules, "
        f"{totals['edges']} imports between modules; no cycle, the API named only by the router and OpenAPI, "
        f"api/ and web/ apart, no .rs file over {MAX_LINES} lines"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
