"""Per-server checks built from the inventory: services, custom commands, log watches, host facts.

Unlike the collectors (fixed files and snippets), these sections depend on the
inventory. Each module has:

- `sections(checks) -> dict[section name, shell snippet]`: added to the probe's one
  script, so they run in the same round trip as the collectors;
- `collect(sections, checks, state) -> list[Family]`: the metric families, never
  raising on garbage (a check that cannot be read reports 0 with a reason).

Every value put into a snippet was validated by exporter.checks_config (names against
a narrow alphabet) and is quoted with `shlex.quote` anyway. Output a host controls
(command output, log lines) reaches the exporter with every line prefixed by `|`, so
it can never forge the probe's own section markers.
"""

from __future__ import annotations

PREFIX_LINES = "sed 's/^/|/'"  # where no awk does it on the way (commands, logs)


def unprefix(text: str) -> str:
    """Undo the '|' prefix: the text as the host printed it (a lone line may lack '|')."""
    return "\n".join(line[1:] if line.startswith("|") else line for line in text.split("\n"))
