"""A model's calibration figures, and the per-model cache ``generate`` reads them from."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..checks.perturb import KINDS
from ..errors import ConfigError
from ..model.files import cache_dir
from ..types import JudgeDesign
from .files import write_atomic
from .stats import Rate

log = logging.getLogger(__name__)

#: Below this share of negatives rejected, ``generate`` warns that the semantic stage is weak.
WEAK_JUDGE = 0.5


class StageFigures(BaseModel):
    """One stage's figures: positives kept, negatives rejected, and rejected per perturbation kind.

    Each :class:`Rate` counts as ``passed`` the rows the stage got right: kept or rejected."""

    positives_kept: Rate = Field(default_factory=Rate)
    negatives_rejected: Rate = Field(default_factory=Rate)
    by_kind: dict[str, Rate] = Field(default_factory=lambda: {kind: Rate() for kind in KINDS})


class Calibration(BaseModel):
    """What ``calibration.json`` holds."""

    model: str
    model_file: str
    library: str
    rows_file: str
    judge: JudgeDesign
    positives: int
    negatives: int
    dropped_negatives: int = Field(description="perturbed rows that failed format or execution")
    stages: dict[str, StageFigures]
    seconds: float

    @property
    def weak_judge(self) -> bool:
        semantic = self.stages.get("semantic")
        return semantic is not None and semantic.negatives_rejected.rate < WEAK_JUDGE

    def summary(self) -> dict[str, Any]:
        """The figures ``stats.json`` records: per stage, positives kept and negatives rejected."""
        return {"model": self.model, "judge": self.judge, "positives": self.positives,
                "negatives": self.negatives,
                "stages": {stage: {"positives_kept": f.positives_kept.rate,
                                   "negatives_rejected": f.negatives_rejected.rate}
                           for stage, f in self.stages.items()}}


# -- the per-model cache -------------------------------------------------------------------------
def cache_path(model_file: str | Path, kind: str = "calibration") -> Path:
    """Where the latest figures of ``kind`` for ``model_file`` are kept (keyed by its path and size)."""
    path = Path(model_file).resolve()
    size = path.stat().st_size if path.exists() else 0
    key = hashlib.sha256(f"{path}:{size}".encode()).hexdigest()[:16]
    return cache_dir(kind) / f"{path.stem}-{key}.json"


def save_for_model(calibration: Calibration) -> None:
    """Keep ``calibration`` where :func:`load_for_model` finds it; a cache that cannot be written is skipped."""
    target = cache_path(calibration.model_file)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, calibration.model_dump_json(indent=2))
    except (OSError, ConfigError):
        pass


def load_for_model(model_file: str | Path) -> Calibration | None:
    """The latest calibration of ``model_file``, or ``None``."""
    try:
        return Calibration.model_validate_json(cache_path(model_file).read_text())
    except (OSError, ValueError):
        return None


def judge_calibration(model_file: str | Path | None) -> Calibration | None:
    """The model's latest calibration; warns when its semantic stage catches under half the negatives."""
    calibration = load_for_model(model_file) if model_file is not None else None
    if calibration is not None and calibration.weak_judge:
        caught = calibration.stages["semantic"].negatives_rejected.rate
        log.warning("the semantic stage of %s caught only %.0f%% of wrong rows in its calibration "
                    "(apigen-local calibrate); rely on grounding, or use a stronger model",
                    calibration.model, 100 * caught)
    return calibration
