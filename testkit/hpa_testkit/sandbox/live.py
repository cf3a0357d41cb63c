"""The live view in the terminal while a scenario plays (rich), or plain progress lines when stdout is not a terminal."""

from __future__ import annotations

import sys
from collections import deque
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text


class LiveView:
    def __init__(self, title: str, duration: float, enabled: bool | None = None) -> None:
        self.title = title
        self.duration = duration
        self.decisions: deque[str] = deque(maxlen=8)
        self.console = Console()
        self.interactive = sys.stdout.isatty() if enabled is None else enabled
        self._live: Live | None = None
        self._last_line = -1.0

    def __enter__(self) -> LiveView:
        if self.interactive:
            self._live = Live(console=self.console, refresh_per_second=8, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def decision(self, t: float, text: str) -> None:
        self.decisions.append(f"{t / 60:6.1f} min  {text}")
        if not self.interactive:
            print(f"[{t / 60:6.1f} min] {text}", flush=True)

    def update(self, t: float, pending: int, running: int, nodes: dict[str, int], cost: float) -> None:
        if self._live is None:
            if t - self._last_line >= 300 or t >= self.duration:
                self._last_line = t
                groups = ", ".join(f"{g}={n}" for g, n in sorted(nodes.items())) or "none"
                print(
                    f"[{t / 60:6.1f} min] pending={pending} running={running} nodes: {groups} cost=${cost:.2f}/h",
                    flush=True,
                )
            return
        table = Table(title=f"{self.title} — {t / 60:.1f} / {self.duration / 60:.0f} min of cluster time")
        table.add_column("pending pods", justify="right")
        table.add_column("running pods", justify="right")
        table.add_column("nodes per group")
        table.add_column("cost / hour", justify="right")
        table.add_row(
            str(pending),
            str(running),
            ", ".join(f"{g}: {n}" for g, n in sorted(nodes.items())) or "—",
            f"${cost:.2f}",
        )
        self._live.update(Group(table, Text("\n".join(self.decisions) or "no decisions yet", style="dim")))
