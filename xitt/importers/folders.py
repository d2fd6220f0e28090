"""Run folders named by ``--pattern``: ``{field}`` placeholders, e.g.
``{encoder}/{intermediate}/{target}/seed{seed}``, matched against a folder's path relative to the
imported folder. Returned: the run's ``encoder, intermediate, target, seed`` (and ``language``)
values; other placeholders only match.
"""

from __future__ import annotations

import re

from xitt.schema import SchemaError

NAMED_FIELDS = ("encoder", "intermediate", "target", "seed")


def pattern_regex(pattern: str, required: tuple[str, ...] = NAMED_FIELDS) -> re.Pattern:
    """``--pattern`` (``{field}`` placeholders, ``required`` among them) -> a regex with one named
    group per field."""
    parts = re.split(r"(\{\w+\})", pattern.strip("/"))
    regex = "".join(f"(?P<{p[1:-1]}>[^/]+?)" if p.startswith("{") else re.escape(p) for p in parts)
    for field in required:
        if f"(?P<{field}>" not in regex:
            raise SchemaError(f"--pattern {pattern!r} must contain {{{field}}}.")
    return re.compile(f"^{regex}$")


def run_names(regex: re.Pattern, rel: str, where: str, pattern: str) -> dict[str, str]:
    match = regex.match(rel)
    if not match:
        raise SchemaError(f"{where}: run folder '{rel}' does not match --pattern {pattern!r}.")
    found = match.groupdict()
    return {k: found[k] for k in (*NAMED_FIELDS, "language") if k in found}
