"""Function fit (part of the semantic stage): is each called function the one the request is about?

Noisy-channel scoring (Min et al. 2022, "Noisy Channel Language Model Prompting for Few-Shot
Text Classification": small LMs classify better by how likely the input is given each label
than by generating the label). For every function ``f`` of the library, the model scores the
request as a reply to "write a request for ``f``" (the mean log-probability per token). A row's
margin is the lowest score among the functions it calls minus the highest among the functions
it does not call. Below ``margin`` the row fails with ``wrong_function``.

:data:`DEFAULT_MARGIN` was the best margin on the development half of the labelled real rows
(``benchmarks/labelled/real_dev.jsonl``, ``benchmarks/precision_real_rows.py``), where it
removed 11 wrong rows for 2 correct ones. On the held-out half it removed 3 wrong rows for 5
correct ones, so the check is off unless a margin is given (``generate --fit-margin``). A row
that calls every function of the library has nothing to compare with and passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Protocol

from ..types import CheckResult, FunctionCall, Tool

WRONG_FUNCTION: Final = "wrong_function"
DEFAULT_MARGIN: Final = 0.3
_DESCRIPTION_CHARS = 300


class Scorer(Protocol):
    """What the check needs of a model (:meth:`~apigen_local.model.local.LocalModel.score_after`)."""

    def score_after(self, prompts: Sequence[Sequence[dict[str, str]]], text: str) -> list[float]: ...


def fit_prompt(tool: Tool) -> list[dict[str, str]]:
    """The chat prompt after which a request for ``tool`` is scored."""
    description = tool.description[:_DESCRIPTION_CHARS]
    return [{"role": "user", "content": f"Write a request for this function.\nFunction: {tool.name}: {description}"}]


def fit_verdict(scores: Mapping[str, float], called: set[str], margin: float) -> CheckResult:
    """Pass when every called function outscores every uncalled one by at least ``margin``."""
    others = [score for name, score in scores.items() if name not in called]
    mine = [scores[name] for name in called if name in scores]
    if not others or not mine:
        return CheckResult.ok()
    gap = min(mine) - max(others)
    if gap >= margin:
        return CheckResult.ok()
    best = max((name for name in scores if name not in called), key=lambda name: scores[name])
    return CheckResult.fail(WRONG_FUNCTION, f"the request reads more like one for {best} than for the called "
                                            f"function (margin {gap:.2f} < {margin:.2f}).")


def check_fit(scorer: Scorer, query: str, calls: Sequence[FunctionCall], candidates: Sequence[Tool],
              margin: float = DEFAULT_MARGIN) -> CheckResult:
    """Score ``query`` after the prompt of each candidate function and apply :func:`fit_verdict`."""
    tools = list({tool.name: tool for tool in candidates}.values())
    called = {call.name for call in calls}
    if len(tools) < 2 or not called:
        return CheckResult.ok()
    scores = scorer.score_after([fit_prompt(tool) for tool in tools], query)
    return fit_verdict(dict(zip((tool.name for tool in tools), scores, strict=True)), called, margin)
