"""A short field-level diff appended to "is immutable" messages, in the shape of cmp.Diff.

Upstream appends `cmp.Diff(old, new)` of internal Go structs to a few Forbidden messages
(pod, PV and PVC updates). That text cannot be reproduced byte for byte from JSON, so this
renders the same idea - the type, then `-`/`+` lines for each changed top-level field - which
is what a person reading kubectl's output needs.
"""

from __future__ import annotations

from .common import go_json


def spec_diff(type_name: str, old: dict, new: dict) -> str:
    lines = [f"  {type_name}{{"]
    same = 0
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if a == b:
            same += 1
            continue
        if a is not None:
            lines.append(f"- \t{k}: {go_json(a)},")
        if b is not None:
            lines.append(f"+ \t{k}: {go_json(b)},")
    if same:
        lines.append(f"  \t... // {same} identical fields")
    lines.append("  }")
    return "\n".join(lines) + "\n"
