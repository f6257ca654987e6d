#!/usr/bin/env python3
"""Check the module graph of the cairn crates: no import cycle between files, and no
module reaching a layer above its own.

Reads every `.rs` file under src/ (the library) and cli/src/ (the CLI), finds each path
that starts with `crate::`, `super::` or `self::` (in `use` lines, grouped uses included,
and inline in code), resolves it to the file that defines the item (following `pub use`
re-exports), and draws an edge from file to file. A module declaring its children
(`mod x;`) is not an edge; a parent using what a child defines is.

Fails (exit 1) on:
- a cycle between files (each cycle is printed once, as a chain of files);
- an arrow that runs up the layers store -> repo -> model -> catalog -> engine ->
  service -> fs (the CLI is a separate crate above them all, and `sync` is a leaf
  every layer may use).

Usage: scripts/check-layers.py [--graph] [--root DIR]
  --graph     print every edge
  --root DIR  check the crates under DIR (DIR/src and DIR/cli/src) instead of this
              repository
  --self-test check the small crates in tests/fixtures/layers/: each `ok-*` must pass
              and each `bad-*` must fail (CI runs this before checking the repository)
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = {"lib": os.path.join(ROOT, "src"), "cli": os.path.join(ROOT, "cli", "src")}
LAYERS = ["store", "repo", "model", "catalog", "engine", "service", "fs"]
LEAVES = {"sync"}

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
PATH_RE = re.compile(r"\b(crate|super|self)((?:::(?:" + IDENT + r"|\*))+)")
CHILD_RE = re.compile(r"(?<![A-Za-z0-9_:])(" + IDENT + r")((?:::" + IDENT + r")+)")
USE_RE = re.compile(r"\b(?:pub(?:\([a-z]+\))?\s+)?use\s+([^;]+);", re.S)
PUB_USE_RE = re.compile(r"\bpub(?:\([a-z]+\))?\s+use\s+([^;]+);", re.S)


def strip_comments_and_strings(text):
    """Remove comments, string and char literals, keeping line structure."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            i = n if end < 0 else end + 1 + len(m.group(1))
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]) or text.startswith("'\\", i):
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if m:
                i += len(m.group(0))
                out.append("' '")
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use(tree):
    """`a::{b, c::{d, e as f}}` -> ['a::b', 'a::c::d', 'a::c::e'] (aliases dropped)."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+", "@", tree))

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        return parts

    def walk(prefix, s):
        brace = s.find("{")
        if brace < 0:
            return [prefix + s.split("@")[0]]
        head, body = s[:brace], s[brace + 1:s.rfind("}")]
        out = []
        for part in split_top(body):
            out.extend(walk(prefix + head, part))
        return out

    return [p.rstrip(":") for p in walk("", tree)]


class Module:
    def __init__(self, crate, path, modpath):
        self.crate, self.path, self.modpath = crate, path, modpath
        with open(path, encoding="utf-8") as f:
            self.text = strip_comments_and_strings(f.read())
        self.reexports = {}  # name -> absolute path list
        self.defined = set(re.findall(
            r"\b(?:fn|struct|enum|trait|type|const|static|mod|macro_rules!)\s+(" + IDENT + ")",
            self.text))

    def absolute(self, path):
        """Resolve a `crate::`/`super::`/`self::` path to a list of segments from the root."""
        segs = path.split("::")
        if segs[0] == "crate":
            return segs[1:]
        base = list(self.modpath)
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                base = base[:-1]
            segs = segs[1:]
        return base + segs


def module_path(root, path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def load(crate, root):
    mods = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".rs"):
                p = os.path.join(dirpath, f)
                m = Module(crate, p, module_path(root, p))
                mods[m.modpath] = m
    for m in mods.values():
        for tree in PUB_USE_RE.findall(m.text):
            for p in expand_use(tree):
                segs = p.split("::")
                name = segs[-1]
                if segs[0] in ("crate", "super", "self"):
                    m.reexports[name] = m.absolute(p)
                elif tuple(m.modpath) + (segs[0],) in mods:
                    m.reexports[name] = list(m.modpath) + segs
    return mods


def resolve(mods, segs, depth=0):
    """The module file that defines what `segs` names (following re-exports)."""
    k = len(segs)
    while k > 0 and tuple(segs[:k]) not in mods:
        k -= 1
    mod = mods.get(tuple(segs[:k]))
    if mod is None:
        return None
    rest = segs[k:]
    if rest and rest[0] in mod.reexports and depth < 20:
        target = mod.reexports[rest[0]] + rest[1:]
        if target != list(segs):
            found = resolve(mods, target, depth + 1)
            if found is not None:
                return found
    return mod


def inline_modules(text):
    """Split out `mod NAME { ... }` blocks: (text without them, [(NAME, block text)])."""
    blocks, out, pos = [], [], 0
    for m in re.finditer(r"\bmod\s+(" + IDENT + r")\s*\{", text):
        if m.start() < pos:
            continue
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        out.append(text[pos:m.start()])
        blocks.append((m.group(1), text[m.end():i - 1]))
        pos = i
    out.append(text[pos:])
    return "".join(out), blocks


def paths_in(mods, modpath, text):
    """Absolute paths (segment lists) that the code of module `modpath` names."""
    text, blocks = inline_modules(text)
    found = []
    for name, block in blocks:
        found.extend(paths_in(mods, modpath + (name,), block))
    scope = Module.__new__(Module)
    scope.modpath = modpath
    children = {v[-1] for v in mods if len(v) == len(modpath) + 1 and v[:-1] == modpath}
    aliases = {c: list(modpath) + [c] for c in children}
    uses = []
    for tree in USE_RE.findall(text):
        for p in expand_use(tree):
            head = p.split("::")[0]
            if head in ("crate", "super", "self"):
                uses.append(scope.absolute(p))
            elif head in aliases:
                uses.append(aliases[head] + p.split("::")[1:])
    for segs in uses:
        glob = segs[-1] == "*"
        segs = [x for x in segs if x not in ("*", "self")]
        if tuple(segs) in mods and not glob:
            aliases[segs[-1]] = segs  # a module named, not an item: `use crate::repo;`
        elif segs:
            found.append(segs)
    code = USE_RE.sub("", text)
    found.extend(scope.absolute(a + b) for a, b in PATH_RE.findall(code))
    for head, rest in CHILD_RE.findall(code):
        if head in aliases:
            found.append(aliases[head] + rest.split("::")[1:])
    return found


def edges_of(mods):
    edges = {}
    for m in mods.values():
        private = PUB_USE_RE.sub("", m.text)  # re-exports pass through, they are not uses
        targets = set()
        for segs in paths_in(mods, m.modpath, private):
            t = resolve(mods, segs)
            if t is not None and t is not m and list(t.modpath) != segs:
                targets.add(t.modpath)
        edges[m.modpath] = targets
    return edges


def cycles(edges):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def chain(edges, comp):
    """One cycle through the component, as a readable chain."""
    members = set(comp)
    start = comp[0]
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges.get(v, ())):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w in members and w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def name(crate, modpath):
    return ("cairn" if crate == "lib" else "cli") + ("::" + "::".join(modpath) if modpath else "")


def self_test():
    import subprocess
    base = os.path.join(ROOT, "tests", "fixtures", "layers")
    wrong = 0
    for case in sorted(os.listdir(base)):
        run = subprocess.run([sys.executable, os.path.abspath(__file__), "--root", os.path.join(base, case)],
                             capture_output=True, text=True)
        want = 0 if case.startswith("ok-") else 1
        if run.returncode != want:
            wrong += 1
            print(f"self-test: {case}: exit {run.returncode}, expected {want}\n{run.stdout}")
    print(f"check-layers self-test: {'FAIL' if wrong else 'ok'} ({len(os.listdir(base))} fixtures)")
    return 1 if wrong else 0


def main():
    args = sys.argv[1:]
    if "--self-test" in args:
        return self_test()
    show_graph = "--graph" in args
    root_dir = args[args.index("--root") + 1] if "--root" in args else ROOT
    crates = {"lib": os.path.join(root_dir, "src"), "cli": os.path.join(root_dir, "cli", "src")}
    failures = 0
    files = 0
    for crate, root in crates.items():
        if not os.path.isdir(root):
            continue
        mods = load(crate, root)
        files += len(mods)
        edges = edges_of(mods)
        if show_graph:
            for v in sorted(edges):
                for w in sorted(edges[v]):
                    print(f"{name(crate, v)} -> {name(crate, w)}")
        for comp in cycles(edges):
            failures += 1
            print("cycle: " + " -> ".join(name(crate, v) for v in chain(edges, comp)))
        if crate == "lib":
            for v in sorted(edges):
                if not v or v[0] in LEAVES:
                    if v and v[0] in LEAVES and any(w and w[0] not in LEAVES for w in edges[v]):
                        failures += 1
                        print(f"leaf reaches a layer: {name(crate, v)}")
                    continue
                for w in sorted(edges[v]):
                    if not w or w[0] in LEAVES or w[0] == v[0]:
                        continue
                    if v[0] in LAYERS and w[0] in LAYERS and LAYERS.index(w[0]) > LAYERS.index(v[0]):
                        failures += 1
                        print(f"upward: {name(crate, v)} -> {name(crate, w)} ({v[0]} is below {w[0]})")
    if failures:
        print(f"check-layers: FAIL ({failures} problem(s) in {files} files)")
        return 1
    print(f"check-layers: ok ({files} files, no cycle, no upward arrow)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
