#!/usr/bin/env python3
"""Open a .safetensors file with the Python `safetensors` package and list it.

Usage:  python3 tools/reference/check_safetensors.py FILE.safetensors

Prints the file's metadata (the "__metadata__" string map) and, for every
tensor, its name, dtype and shape; exits 0.  Exits 1 with a message on stderr
when the file cannot be opened or read.  Needs only `safetensors` and `numpy`
(pip install safetensors numpy); it is an independent check that files written
by steepest are valid safetensors files.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: check_safetensors.py FILE.safetensors", file=sys.stderr)
        return 2
    path = argv[0]
    try:
        from safetensors import safe_open

        with safe_open(path, framework="np") as f:
            metadata = f.metadata()
            names = list(f.keys())
            tensors = [(name, f.get_tensor(name)) for name in names]
    except Exception as e:  # noqa: BLE001 - any failure means "cannot open"
        print(f"check_safetensors: cannot open {path}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1

    print(f"file: {path}")
    if metadata:
        print("metadata:")
        for k in sorted(metadata):
            print(f"  {k} = {metadata[k]}")
    else:
        print("metadata: (none)")
    print(f"tensors: {len(tensors)}")
    for name, t in tensors:
        print(f"  {name}  dtype={t.dtype}  shape={list(t.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
