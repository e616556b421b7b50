"""APIGen sampling: query style, offered tools (with distractors) and few-shot examples per row.

Every choice for row ``index`` comes from a random generator seeded with ``(seed, index)``, so
the same seed gives the same requests in any order, which is what makes resume exact.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ..errors import ConfigError
from ..jsonl import BadLine, parse_line, split_lines
from ..types import FunctionCall, QueryStyle, Tool
from .calls_first import CallCheck, CallPool, build_pool, sample_calls
from .values import ValueDrawer

#: ``query_first``: the model writes the request and its calls; ``calls_first``: the calls are
#: drawn first (:mod:`.calls_first`) and the model writes only the request.
GenerationMode = Literal["query_first", "calls_first"]
ALL_STYLES: tuple[QueryStyle, ...] = ("simple", "multiple", "parallel", "parallel_multiple")
DEFAULT_STYLE_WEIGHTS: dict[QueryStyle, float] = {
    "simple": 0.3,
    "multiple": 0.3,
    "parallel": 0.2,
    "parallel_multiple": 0.2,
}


class StylePlan(BaseModel):
    """How many tools a style offers and how many calls its answer holds."""

    min_tools: int
    max_tools: int
    min_calls: int
    max_calls: int


STYLE_PLANS: dict[QueryStyle, StylePlan] = {
    "simple": StylePlan(min_tools=1, max_tools=1, min_calls=1, max_calls=1),
    "multiple": StylePlan(min_tools=2, max_tools=4, min_calls=1, max_calls=1),
    "parallel": StylePlan(min_tools=1, max_tools=1, min_calls=2, max_calls=3),
    "parallel_multiple": StylePlan(min_tools=2, max_tools=4, min_calls=2, max_calls=4),
}


class FewShotExample(BaseModel):
    """One seed row used as a few-shot example: a query, its answer calls and its tools as JSON text."""

    query: str
    answers: str
    tools: str = "[]"

    def _answer_list(self) -> list:
        """Its answer read as a JSON list (``[]`` when unreadable or not a list)."""
        try:
            calls = json.loads(self.answers)
        except json.JSONDecodeError:
            return []
        return calls if isinstance(calls, list) else []

    @property
    def call_count(self) -> int:
        """How many calls its answer makes (0 when unreadable)."""
        return len(self._answer_list())

    @property
    def calls(self) -> list[dict]:
        """The calls its answer makes, as JSON objects."""
        return [call for call in self._answer_list() if isinstance(call, dict)]

    @property
    def functions(self) -> set[str]:
        """Names of the functions its answer calls."""
        return {call.get("name") for call in self.calls}


IrrelevanceSource = Literal["derived", "written"]


class GenerationRequest(BaseModel):
    """Everything sampled for one row; the prompt is a pure function of it."""

    index: int
    seed: int
    style: QueryStyle
    tools: list[Tool]
    examples: list[FewShotExample]
    min_calls: int
    max_calls: int
    calls: list[FunctionCall] = Field(default_factory=list)  # calls-first: the calls the request must ask for
    # calls-first: per call, the seed row shown last when the model writes that call's request
    closest: list[FewShotExample | None] = Field(default_factory=list)
    # generate --irrelevance: "derived", a row whose called functions leave the offered tools once
    # it passes; "written", a request the model writes for tools that cannot serve it
    irrelevance: IrrelevanceSource | None = None

    @property
    def writes_request_only(self) -> bool:
        """True when the model writes only the request: its calls are drawn (calls-first), or it has none."""
        return bool(self.calls) or self.irrelevance == "written"

    def part(self, position: int) -> GenerationRequest:
        """Calls-first: the request for the one call at ``position``, shown the seed row closest to it last."""
        closest = self.closest[position] if position < len(self.closest) else None
        return self.model_copy(update={"calls": [self.calls[position]], "min_calls": 1, "max_calls": 1,
                                       "examples": self.examples + ([closest] if closest else []),
                                       "closest": []})

    @property
    def shown_examples(self) -> list[FewShotExample]:
        """Every few-shot example some prompt of this row shows, each once."""
        shown = list(self.examples)
        shown += [e for e in self.closest if e is not None and e not in shown]
        return shown

    @property
    def sample_seed(self) -> int:
        """Seed for the model's own sampling of this row."""
        return _row_random(self.seed, self.index, "model").randrange(2**31)


def parse_style_mix(text: str | None) -> dict[QueryStyle, float]:
    """Parse ``"simple=2,parallel=1"`` or ``"simple,multiple"`` into normalised weights."""
    if not text:
        return dict(DEFAULT_STYLE_WEIGHTS)
    weights: dict[QueryStyle, float] = {}
    for part in text.split(","):
        name, _, weight = part.strip().partition("=")
        name = name.strip().replace("-", "_")
        if name not in ALL_STYLES:
            raise ConfigError(f"unknown query style '{name}': choose from {', '.join(ALL_STYLES)}")
        try:
            value = float(weight) if weight else 1.0
        except ValueError as exc:
            raise ConfigError(f"style weight for '{name}' is not a number: {weight!r}") from exc
        if value < 0:
            raise ConfigError(f"style weight for '{name}' is negative")
        weights[name] = value  # type: ignore[index]
    return normalise_weights(weights)


def normalise_weights(weights: Mapping[QueryStyle, float]) -> dict[QueryStyle, float]:
    """Scale weights to sum to one; reject an empty or all-zero mix."""
    total = sum(weights.values())
    if total <= 0:
        raise ConfigError("the style mix gives every style a weight of zero")
    return {style: value / total for style, value in weights.items() if value > 0}


def load_seed_examples(path: str | Path) -> list[FewShotExample]:
    """Read few-shot rows from an xlam-60k JSONL file (``query`` and ``answers`` as JSON text)."""
    seed_path = Path(path)
    if not seed_path.is_file():
        raise ConfigError(f"few-shot file not found: {seed_path}")
    try:
        data = seed_path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"few-shot file {seed_path} cannot be read: {exc.strerror or exc}") from exc
    examples: list[FewShotExample] = []
    for line in split_lines(data):
        try:
            row = parse_line(line)
            answers, tools = row["answers"], row.get("tools", [])
            answers_text = answers if isinstance(answers, str) else json.dumps(answers)
            tools_text = tools if isinstance(tools, str) else json.dumps(tools)
            json.loads(answers_text)
            json.loads(tools_text)
            examples.append(FewShotExample(query=str(row["query"]), answers=answers_text, tools=tools_text))
        except BadLine as exc:
            raise ConfigError(f"few-shot file {seed_path}: {exc}") from None
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise ConfigError(
                f"few-shot file {seed_path} {line.where()} is not an xlam row with "
                f"'query' and 'answers': {exc}"
            ) from None
    if not examples:
        raise ConfigError(f"few-shot file {seed_path} holds no example rows")
    return examples


class RequestSampler:
    """Builds the :class:`GenerationRequest` for any row index, deterministically from the seed."""

    def __init__(
        self,
        tools: Sequence[Tool],
        examples: Sequence[FewShotExample],
        *,
        seed: int,
        styles: Mapping[QueryStyle, float] | None = None,
        n_examples: int = 3,
        example_group: int = 1,
        mode: GenerationMode = "query_first",
        irrelevance: float = 0.0,
        call_check: CallCheck | None = None,
    ) -> None:
        """``call_check`` executes calls-first's candidate calls (the sandbox), so that only calls
        that run are drawn; without it every well-formed candidate is kept."""
        if not tools:
            raise ConfigError("no tools to sample from")
        self.mode = mode
        self.pool = CallPool({})
        if mode == "calls_first":  # only functions with a verified call are offered
            self.pool = build_pool(tools, ValueDrawer(example.answers for example in examples), seed, call_check)
            tools = [t for t in tools if self.pool.has(t.name)]
            if not tools:
                raise ConfigError("calls-first: no function of the library has a call that can be drawn "
                                  "and runs; add seed rows that call them (--seed-file)")
        self.tools = list(tools)
        self.examples = list(examples)
        self.seed = seed
        self.styles = normalise_weights(styles or DEFAULT_STYLE_WEIGHTS)
        self.n_examples = n_examples
        if example_group < 1:
            raise ConfigError("example_group must be at least 1")
        self.example_group = example_group
        if irrelevance and len(self.tools) < 2:
            raise ConfigError("irrelevance rows need a library of at least 2 functions: one is taken out of "
                              "the offered tools, and another stays")
        self.irrelevance = irrelevance

    def is_irrelevance(self, index: int) -> bool:
        """Whether row ``index`` becomes an irrelevance row (a seeded draw of its own, so the other
        rows are the same with or without irrelevance rows)."""
        return _row_random(self.seed, index, "irrelevance").random() < self.irrelevance

    def request(self, index: int) -> GenerationRequest:
        """The request for row ``index``."""
        rng = _row_random(self.seed, index, "sample")
        names = list(self.styles)
        style: QueryStyle = rng.choices(names, weights=[self.styles[n] for n in names])[0]
        irrelevance: IrrelevanceSource | None = None
        if self.is_irrelevance(index):  # one call among several tools: taking its function out leaves others
            style = "multiple"
            irrelevance = "written" if _row_random(self.seed, index, "irrelevance source").random() < 0.5 else "derived"
        plan = STYLE_PLANS[style]
        min_calls, max_calls = (0, 0) if irrelevance == "written" else (plan.min_calls, plan.max_calls)
        n_tools = min(rng.randint(plan.min_tools, plan.max_tools), len(self.tools))
        offered = rng.sample(self.tools, n_tools)
        # as in APIGen, examples show other functions than the offered ones, so a weak model
        # cannot copy an example's query for the same function
        offered_names = {tool.name for tool in offered}
        # every row of a group of ``example_group`` rows reads the examples in the same shuffled
        # order and takes the first ones that fit it, so the rows of a batch mostly share their
        # few-shot block: the model evaluates it once for all of them (model/engine.py)
        order = list(self.examples)
        _row_random(self.seed, index // self.example_group, "examples").shuffle(order)
        others = [e for e in order if not e.functions & offered_names] or order
        examples = others[:self.n_examples]
        calls: list[FunctionCall] = []
        closest: list[FewShotExample | None] = []
        if self.mode == "calls_first" and irrelevance != "written":
            calls = sample_calls(_row_random(self.seed, index, "calls"), style, offered, self.pool,
                                 plan.min_calls, plan.max_calls)
            # each call's request is written on its own (generator.py) and shown last, next to its
            # task, the seed row that asks for a call most like it (closest_example); the examples
            # before it call none of the row's functions and follow the group's order, so a batch
            # shares them; one-call seed rows show a request for one call best (a seed row of two
            # asks teaches two asks: "Divide 580 by 12, and also 12 by 580")
            called = {call.name for call in calls}
            single = [e for e in order if e.call_count == 1]
            generic = [e for e in single if not e.functions & called]
            generic += [e for e in order if e not in single and not e.functions & called]
            closest = [closest_example(call, single) if self.n_examples else None for call in calls]
            examples = generic[:max(self.n_examples - 1, 0)]
        return GenerationRequest(
            index=index,
            seed=self.seed,
            style=style,
            tools=offered,
            examples=examples,
            min_calls=min_calls,
            max_calls=max_calls,
            calls=calls,
            closest=closest,
            irrelevance=irrelevance,
        )


def closest_example(call: FunctionCall, examples: Sequence[FewShotExample]) -> FewShotExample | None:
    """The example whose call of ``call``'s function sets the most of ``call``'s arguments and none it
    leaves out (a small model copies an option the example sets: "... that uses underscores" for a
    call that keeps the default separator); the first of equals; ``None`` when no example fits."""
    wanted = set(call.arguments)
    best: tuple[int, FewShotExample] | None = None
    for example in examples:
        for shown in example.calls:
            keys = set(shown.get("arguments") or {}) if shown.get("name") == call.name else None
            if keys is not None and keys <= wanted and (best is None or len(keys) > best[0]):
                best = (len(keys), example)
    return best[1] if best else None


def _row_random(seed: int, index: int, purpose: str) -> random.Random:
    return random.Random(f"apigen-local:{seed}:{index}:{purpose}")
