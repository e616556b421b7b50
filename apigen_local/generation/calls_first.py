"""Calls-first generation: draw verified calls, then let the model write only the request.

In the query-first mode the model invents a request and the calls together, and a small model
gets the calls wrong (another function, repeated calls, values in the wrong place). Here the
calls are data. Before the first row, :func:`build_pool` draws candidate calls of every function
with values that make sense (:mod:`.values`) and, when the run has a sandbox, executes them:
a call that raises is dropped, so no row is built on it. Each row then takes its calls from this
pool of verified single calls: ``simple`` one call, ``parallel`` several calls of one function,
``multiple`` one call among distractor tools, ``parallel_multiple`` calls of two or more
functions. The model writes the request those calls answer (:func:`~.prompts.request_messages`),
shown seed rows that call the same functions last, and every check still runs on the finished
row. A function with no verified call is not offered.

Every draw comes from a generator seeded with the run's seed (the pool: and the function's name;
a row: and its index), so resume stays exact as long as the library's functions succeed or fail
alike from run to run.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence

from ..types import FunctionCall, QueryStyle, Tool
from .values import ValueDrawer

#: candidate calls drawn per function for the pool
POOL_SIZE = 24
#: draws a pool may spend per candidate before it stops looking for new distinct calls
_TRIES = 4

#: executes calls and says which ran without error, in order
CallCheck = Callable[[list[FunctionCall]], list[bool]]


def _key(call: FunctionCall) -> str:
    return json.dumps(call.model_dump(), sort_keys=True)


class CallPool:
    """Verified single calls per function name."""

    def __init__(self, calls: dict[str, list[FunctionCall]]) -> None:
        self.calls = {name: list(found) for name, found in calls.items() if found}

    def has(self, name: str) -> bool:
        """True when ``name`` has at least one verified call."""
        return name in self.calls

    def __len__(self) -> int:
        return sum(len(found) for found in self.calls.values())


def build_pool(tools: Sequence[Tool], drawer: ValueDrawer, seed: int, check: CallCheck | None = None,
               size: int = POOL_SIZE) -> CallPool:
    """Draw up to ``size`` distinct calls of each tool; with ``check``, keep those that ran."""
    drawn: list[FunctionCall] = []
    for tool in tools:
        rng = random.Random(f"apigen-local:{seed}:pool:{tool.name}")
        keys: set[str] = set()
        for _ in range(size * _TRIES):
            call = drawer.call(rng, tool)
            if call is not None and _key(call) not in keys:
                keys.add(_key(call))
                drawn.append(call)
            if len(keys) == size:
                break
    passed = check(drawn) if check is not None and drawn else [True] * len(drawn)
    pool: dict[str, list[FunctionCall]] = {}
    for call, ok in zip(drawn, passed, strict=True):
        if ok:
            pool.setdefault(call.name, []).append(call)
    return CallPool(pool)


def sample_calls(rng: random.Random, style: QueryStyle, tools: Sequence[Tool], pool: CallPool,
                 min_calls: int, max_calls: int) -> list[FunctionCall]:
    """The calls of one row, all different, from ``pool``; ``[]`` if the pool cannot fill the style.

    ``simple`` and ``parallel`` call the first offered tool; ``multiple`` one of the offered tools;
    ``parallel_multiple`` at least two different ones when more than one is offered.
    """
    usable = [tool for tool in tools if pool.has(tool.name)]
    if not usable:
        return []
    count = rng.randint(min_calls, max_calls)
    if style in ("simple", "parallel"):
        found = pool.calls.get(tools[0].name, [])
        return rng.sample(found, count) if len(found) >= count else []
    if style == "multiple":
        return [rng.choice(pool.calls[rng.choice(usable).name])]
    if len(usable) < 2:
        return []
    names = [tool.name for tool in rng.sample(usable, 2)]
    names += [rng.choice(usable).name for _ in range(count - 2)]
    rng.shuffle(names)
    calls: list[FunctionCall] = []
    for name in names:
        left = [call for call in pool.calls[name] if call not in calls]
        if not left:
            return []
        calls.append(rng.choice(left))
    return calls
