"""docs/BENCHMARKS.md is shared by the benchmark commands: tests/bench/run writes the
page's head (the IMAP sync comparison), each other command its own section between
`<!-- NAME:begin -->` and `<!-- NAME:end -->`. A command replaces only what is its own."""

import os
import re

_SECTION = re.compile(r"<!-- ([a-z0-9_-]+):begin -->.*?<!-- \1:end -->", re.S)


def markers(name):
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def put(path, name, body):
    """Puts body (the section's text, without markers) in place of section name of the
    file at path, or at its end when it has none yet."""
    begin, end = markers(name)
    block = f"{begin}\n\n{body.strip()}\n\n{end}"
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def kept(path):
    """The sections of the file at path, for a command that rewrites the rest of it."""
    if not os.path.exists(path):
        return []
    return [m.group(0) for m in _SECTION.finditer(open(path).read())]
