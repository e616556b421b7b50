"""Run statistics, computed from the records themselves so a resumed run reports the whole run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field, computed_field

from ..types import STAGE_ORDER, Record


class Rate(BaseModel):
    """How many rows reached a stage or group, and how many passed it."""

    total: int = 0
    passed: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate(self) -> float:
        return round(self.passed / self.total, 4) if self.total else 0.0

    def add(self, passed: bool) -> None:
        self.total += 1
        self.passed += int(passed)

    def percent(self) -> str:
        """The rate as a whole percentage, or ``n/a`` when no row reached it."""
        return f"{self.rate:.0%}" if self.total else "n/a"


class RunStats(BaseModel):
    """What ``stats.json`` holds."""

    rows: int = 0
    accepted: int = 0
    stages: dict[str, Rate] = Field(default_factory=dict)
    styles: dict[str, Rate] = Field(default_factory=dict)
    functions: dict[str, Rate] = Field(default_factory=dict)
    reasons: dict[str, int] = Field(default_factory=dict)
    not_run: dict[str, int] = Field(default_factory=dict, description="rows per stage the run could not run "
                                    "(execution, in a verify run with no library): not executed, never passed")
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    wall_seconds: float = 0.0
    rows_per_minute: float = 0.0
    tokens_per_second: float = 0.0
    sandbox_calls: int = 0
    sandbox_calls_per_second: float = 0.0
    model_idle_seconds: float = Field(0.0, description="time the model waited for the sandbox")
    calibration: dict[str, Any] | None = Field(None, description="the model's latest calibration, if one ran")
    labelled: dict[str, Any] | None = Field(
        None, description="precision and recall on the model's latest labelled rows (calibrate --labels)")
    reviewed: dict[str, Any] | None = Field(
        None, description="precision measured by a person's review of this run (apigen-local review)")
    rows_per_worker: dict[str, int] = Field(
        default_factory=dict, description="rows each Ray worker did in the last session (Ray runs only)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def acceptance(self) -> float:
        return round(self.accepted / self.rows, 4) if self.rows else 0.0


def compute_stats(records: Iterable[Record], *, wall_seconds: float = 0.0) -> RunStats:
    """Aggregate ``records``; ``wall_seconds`` is the elapsed time the run took."""
    stats = RunStats(wall_seconds=round(wall_seconds, 3))
    # (group, passed) -> rows, counted in plain counters: a Rate per row costs a model update each
    stages: Counter[tuple[str, bool]] = Counter()
    styles: Counter[tuple[str, bool]] = Counter()
    functions: Counter[tuple[str, bool]] = Counter()
    reasons: Counter[str] = Counter()
    not_run: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    generated_tokens = sandbox_calls = 0
    for record in records:
        rejection = record.rejection
        accepted = rejection is None
        stages.update((stage, check.passed) for stage, check in record.checks())
        not_run.update(record.not_run)
        styles[record.style, accepted] += 1
        functions.update((name, accepted) for name in {call.name for call in record.answers})
        if rejection is not None:
            reasons["/".join(rejection)] += 1
        if record.timings:
            seconds.update(record.timings)
        generated_tokens += record.tokens.get("generation", 0)
        sandbox_calls += len(record.execution_result)
    stats.rows = styles.total()
    stats.accepted = sum(count for (_, passed), count in styles.items() if passed)
    stats.sandbox_calls = sandbox_calls
    stage_rates = _rates(stages)
    stats.stages = {stage: stage_rates.get(stage, Rate()) for stage in STAGE_ORDER
                    if stage in stage_rates or stage != "irrelevance"}
    stats.styles = _rates(styles)
    stats.functions = _rates(functions)
    stats.reasons = dict(reasons.most_common())
    stats.not_run = dict(not_run)
    stats.stage_seconds = {k: round(v, 3) for k, v in sorted(seconds.items())}
    if wall_seconds > 0:
        stats.rows_per_minute = round(stats.rows * 60 / wall_seconds, 2)
    if seconds["generation"] > 0:
        stats.tokens_per_second = round(generated_tokens / seconds["generation"], 1)
    if seconds["execution"] > 0:
        stats.sandbox_calls_per_second = round(stats.sandbox_calls / seconds["execution"], 1)
    return stats


def _rates(counts: Counter[tuple[str, bool]]) -> dict[str, Rate]:
    """A Rate per group of ``(group, passed) -> rows`` counts, by group name."""
    rates: dict[str, Rate] = {}
    for (group, passed), count in sorted(counts.items()):
        rate = rates.setdefault(group, Rate())
        rate.total += count
        rate.passed += count if passed else 0
    return rates
