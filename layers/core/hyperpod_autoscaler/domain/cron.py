"""Standard 5-field cron (minute hour day-of-month month day-of-week, UTC) as Karpenter's disruption budgets use it:
``*``, numbers, ranges ``a-b``, lists ``a,b``, steps ``*/n`` and ``a-b/n``, month and weekday names, and the macros
``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight``, ``@hourly``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_NAMES = {
    3: {
        m: i + 1
        for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])
    },
    4: {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
}
_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def _value(text: str, field: int) -> int:
    low = text.lower()
    if low in _NAMES.get(field, {}):
        return _NAMES[field][low]
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number")
    return int(text)


def _field(text: str, field: int) -> frozenset[int]:
    lo, hi = _RANGES[field]
    out: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"bad step {step_text!r}")
            step = int(step_text)
        if part == "*":
            start, end = lo, hi
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, field), _value(b, field)
        else:
            start = _value(part, field)
            end = hi if step > 1 else start
        if not (lo <= start <= hi and lo <= end <= hi) or start > end:
            raise ValueError(f"{part!r} is outside {lo}-{hi}")
        out.update(range(start, end + 1, step))
    if field == 4 and 7 in out:  # Sunday is 0 or 7
        out.discard(7)
        out.add(0)
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expr: str) -> Cron:
        text = MACROS.get(expr.strip(), expr.strip())
        parts = text.split()
        if len(parts) != 5:
            raise ValueError(f"{expr!r} is not a 5-field cron expression")
        f = [_field(p, i) for i, p in enumerate(parts)]
        return cls(f[0], f[1], f[2], f[3], f[4], parts[2] == "*", parts[4] == "*")

    def matches(self, t: datetime) -> bool:
        if t.minute not in self.minutes or t.hour not in self.hours or t.month not in self.months:
            return False
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        # cron's rule: when both day fields are restricted, either may match
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow


def window_active(schedule: str, duration_seconds: float, now: float) -> bool:
    """Whether a window that opens at each ``schedule`` match and lasts ``duration_seconds`` contains ``now``."""
    cron = Cron.parse(schedule)
    t = datetime.fromtimestamp(now, UTC).replace(second=0, microsecond=0)
    minutes = int(duration_seconds // 60) + 1
    for back in range(min(minutes, 60 * 24 * 31)):
        start = t - timedelta(minutes=back)
        if cron.matches(start) and start.timestamp() + duration_seconds > now:
            return True
    return False
