"""A window of contest dates (`eval --since/--until`): LiveCodeBench scores a model only on problems published
after its training cutoff, so a score names the window it was measured on, and only equal windows are ranked
together. The rule is lcb_runner's: both ends inclusive, each read as midnight of that day, compared with the
problem's `contest_date`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from codelutra_data.errors import UserError


def parse_day(text: str | None, flag: str) -> dt.datetime | None:
    if text is None or text == "":
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise UserError(f"{flag} takes a date as YYYY-MM-DD, got {text!r}") from None


@dataclass(frozen=True)
class DateWindow:
    since: str | None = None
    until: str | None = None

    def __post_init__(self):
        start, end = parse_day(self.since, "--since"), parse_day(self.until, "--until")
        if start and end and start > end:
            raise UserError(f"--since {self.since} is after --until {self.until}")

    def __bool__(self) -> bool:
        return bool(self.since or self.until)

    @property
    def label(self) -> str:
        """How results and the leaderboard name the window: `2025-01-01..2025-04-30`, open ends left blank."""
        return f"{self.since or ''}..{self.until or ''}"

    def holds(self, date_text: str) -> bool:
        day = dt.datetime.fromisoformat(date_text)
        if day.tzinfo is not None:
            day = day.astimezone(dt.timezone.utc).replace(tzinfo=None)
        start, end = parse_day(self.since, "--since"), parse_day(self.until, "--until")
        return (start is None or start <= day) and (end is None or day <= end)

    def keeps_row(self, row: dict) -> bool:
        """For reading a large task set: a row outside the window is dropped before it becomes a task (a row
        without a readable date is kept, and refused later with its task)."""
        try:
            return self.holds(row["contest_date"])
        except (KeyError, TypeError, ValueError):
            return True

    def select(self, tasks: list, spec: str) -> list:
        """The tasks dated inside the window; one line when the source has no dates or none fall inside."""
        undated = [t for t in tasks if not t.metadata.get("contest_date")]
        if undated:
            raise UserError(f"--since/--until select problems by contest date, and {spec} has none (e.g. "
                            f"{undated[0].task_id}); they apply to LiveCodeBench-format sources")
        kept = [t for t in tasks if self.holds(t.metadata["contest_date"])]
        if not kept:
            dates = sorted(t.metadata["contest_date"][:10] for t in tasks)
            span = f" (its problems are dated {dates[0]} to {dates[-1]})" if dates else ""
            raise UserError(f"{spec} has no problems dated in {self.label}{span}")
        return kept
