#!/usr/bin/env python3
"""Checks that README.md and docs/*.md point only at things that exist.

- every relative Markdown link ([text](path), ![alt](path), path#anchor)
  resolves to a file or directory in the repository, and an anchor to a
  heading of the target document (GitHub's anchor rules);
- every repository path named in backticks (`src/heap/slab.rs`,
  `kernel_demo/minimal/`) exists;
- no document points outside the repository (../shared, notes/).

Prints one line per document and ends with `N passed, N failed`.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Top-level directories whose paths the documents name in backticks.
TREES = ("src", "capi", "c_tests", "kernel_demo", "scripts", "bench", "docs",
         "fuzz", "examples", "mk", "include")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")
FENCE = re.compile(r"^(```|~~~)")


def anchors(path):
    """The anchors GitHub gives the headings of a Markdown file."""
    seen, out = {}, set()
    in_fence = False
    for line in open(path, encoding="utf-8"):
        if FENCE.match(line):
            in_fence = not in_fence
        if in_fence or not line.startswith("#"):
            continue
        text = line.lstrip("#").strip()
        slug = re.sub(r"[^\w\- ]", "", text.lower().replace("`", "")).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def problems(doc):
    base = os.path.dirname(doc)
    text = open(doc, encoding="utf-8").read()
    found = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(base, path)) if path else doc
        if not full.startswith(ROOT + os.sep) and full != ROOT:
            found.append(f"link {target} leaves the repository")
        elif not os.path.exists(full):
            found.append(f"link {target}: no such file")
        elif anchor and full.endswith(".md") and anchor not in anchors(full):
            found.append(f"link {target}: no heading with that anchor")
    for name in CODE.findall(text):
        name = name.rstrip(".,:;")
        if name.split("/")[0] not in TREES or "/" not in name:
            continue
        if any(c in name for c in "*<>{}$…") or "..." in name:
            continue  # a pattern or placeholder, not a path
        path = name.split(":")[0]  # file.c:123
        if not os.path.exists(os.path.join(ROOT, path)):
            found.append(f"`{name}` names a path that does not exist")
    for bad in ("../shared", "notes/boot.md", "DESIGN.md", "STYLE.md"):
        if bad in text:
            found.append(f"points outside the repository ({bad})")
    return found


def main():
    docs = [os.path.join(ROOT, "README.md")]
    ddir = os.path.join(ROOT, "docs")
    docs += sorted(os.path.join(ddir, f) for f in os.listdir(ddir) if f.endswith(".md"))
    passed = failed = 0
    for doc in docs:
        rel = os.path.relpath(doc, ROOT)
        found = problems(doc)
        if found:
            failed += 1
            print(f"FAIL {rel}")
            for p in found:
                print(f"       {p}")
        else:
            passed += 1
            print(f"ok   {rel}: links and paths resolve")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
