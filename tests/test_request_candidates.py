"""Calls-first rows are written call by call: a few candidate requests for each drawn call, the
first that states its call kept, and the kept requests joined into one (issue 38)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from apigen_local.checks.part import states_call
from apigen_local.generation.generator import Generator, join_requests
from apigen_local.generation.sampling import GenerationRequest
from apigen_local.model.local import Completion
from apigen_local.types import FunctionCall, Tool

DIVIDE = Tool(name="getdivision", description="Divides two integers.", parameters={
    "type": "object", "properties": {"dividend": {"type": "integer", "description": "The number to divide."},
                                     "divisor": {"type": "integer", "description": "The number to divide by."}},
    "required": ["dividend", "divisor"]})


class ScriptedModel:
    """Answers a call's prompt with a vague request its first ``vague`` times (per call), then with
    a right one; counts the prompts."""

    name = "scripted"

    def __init__(self, vague: dict[int, int] | None = None) -> None:
        self.vague = vague if vague is not None else {}
        self.seen: dict[int, int] = {}
        self.prompts = 0

    def _text(self, messages: Sequence[dict[str, str]]) -> str:
        self.prompts += 1
        calls = json.loads(messages[-1]["content"].split("Calls:\n", 1)[1].split("\n", 1)[0])
        args = calls[0]["arguments"]
        self.seen[args["dividend"]] = self.seen.get(args["dividend"], 0) + 1
        if self.seen[args["dividend"]] <= self.vague.get(args["dividend"], 1):
            return json.dumps({"query": "Divide some numbers."})
        return json.dumps({"query": f"Divide {args['dividend']} by {args['divisor']}."})

    def complete_json_many(self, items: Sequence[tuple[Any, Any]], *, seeds: Sequence[int], on_done=None,
                           **_: Any) -> list[Completion]:
        out = []
        for i, (messages, _schema) in enumerate(items):
            out.append(Completion(text=self._text(messages), prompt_tokens=10, completion_tokens=5, seconds=0.1))
            if on_done is not None:
                on_done(i, out[-1].text)
        return out

    def complete_json(self, messages: Any, _schema: Any, **_: Any) -> Completion:
        return Completion(text=self._text(messages), prompt_tokens=10, completion_tokens=5, seconds=0.1)


def _request(calls: list[FunctionCall]) -> GenerationRequest:
    return GenerationRequest(index=0, seed=1, style="parallel" if len(calls) > 1 else "simple", tools=[DIVIDE],
                             examples=[], min_calls=len(calls), max_calls=len(calls), calls=calls)


def test_the_first_candidate_that_states_its_call_is_kept_and_the_parts_are_joined() -> None:
    calls = [FunctionCall(name="getdivision", arguments={"dividend": 144, "divisor": 12}),
             FunctionCall(name="getdivision", arguments={"dividend": 365, "divisor": 7})]
    model = ScriptedModel()
    done: list[int] = []
    generator = Generator(model, candidates=2, choose=states_call)  # type: ignore[arg-type]
    completion = generator.generate_many([_request(calls)], on_done=done.append)[0]
    pair = json.loads(completion.text)["pairs"][0]
    assert pair["query"] == "Divide 144 by 12. Also, divide 365 by 7."
    assert pair["answers"] == [call.model_dump() for call in calls]
    assert model.prompts == 4 and done == [0]
    assert completion.prompt_tokens == 40


def test_a_call_gets_another_request_only_while_none_states_it() -> None:
    calls = [FunctionCall(name="getdivision", arguments={"dividend": 144, "divisor": 12}),
             FunctionCall(name="getdivision", arguments={"dividend": 365, "divisor": 7})]
    model = ScriptedModel(vague={144: 0, 365: 2})  # the first call is stated at once, the second at its third try
    done: list[int] = []
    generator = Generator(model, candidates=3, choose=states_call)  # type: ignore[arg-type]
    completion = generator.generate_many([_request(calls), _request(calls[:1])], on_done=done.append)[0]
    assert json.loads(completion.text)["pairs"][0]["query"] == "Divide 144 by 12. Also, divide 365 by 7."
    assert model.prompts == 5 and sorted(done) == [0, 1] and len(done) == 2


def test_a_call_no_request_states_keeps_its_first_after_the_limit() -> None:
    calls = [FunctionCall(name="getdivision", arguments={"dividend": 144, "divisor": 12})]
    model = ScriptedModel(vague={144: 9})
    generator = Generator(model, candidates=3, choose=states_call)  # type: ignore[arg-type]
    pair = json.loads(generator.generate_many([_request(calls)])[0].text)["pairs"][0]
    assert pair["query"] == "Divide some numbers." and model.prompts == 3


def test_one_at_a_time_writes_what_the_batch_writes() -> None:
    calls = [FunctionCall(name="getdivision", arguments={"dividend": 144, "divisor": 12}),
             FunctionCall(name="getdivision", arguments={"dividend": 365, "divisor": 7})]
    batched, alone = ScriptedModel(vague={144: 0, 365: 1}), ScriptedModel(vague={144: 0, 365: 1})
    many = Generator(batched, candidates=2, choose=states_call).generate_many([_request(calls)])[0]  # type: ignore[arg-type]
    one = Generator(alone, candidates=2, choose=states_call).generate(_request(calls))  # type: ignore[arg-type]
    assert many.text == one.text and batched.prompts == alone.prompts == 3


def test_without_a_chooser_one_request_is_written_per_call() -> None:
    calls = [FunctionCall(name="getdivision", arguments={"dividend": 144, "divisor": 12})]
    model = ScriptedModel()
    generator = Generator(model, candidates=2)  # type: ignore[arg-type]
    pair = json.loads(generator.generate_many([_request(calls)])[0].text)["pairs"][0]
    assert pair["query"] == "Divide some numbers." and model.prompts == 1


def test_states_call_wants_every_value_of_the_call_and_a_request() -> None:
    call = FunctionCall(name="getdivision", arguments={"dividend": 144, "divisor": 12})
    assert states_call("Divide 144 by 12.", call, [DIVIDE])
    assert not states_call("Divide 144 by 7.", call, [DIVIDE])  # a value it does not state
    assert not states_call("Divide 144 by 12 and then by 3.", call, [DIVIDE])  # a value no call uses
    assert not states_call("144 divided by 12 is 12.", call, [DIVIDE])  # a statement


def test_joined_requests_keep_names_capitalised() -> None:
    assert join_requests(["Is 77 prime?", "What is 5 km in feet"]) == "Is 77 prime? Also, what is 5 km in feet"
    assert join_requests(["When did Stitch first appear", "Elsa debuted in which film?"]) == \
        "When did Stitch first appear. Also, Elsa debuted in which film?"


def test_the_request_prompt_describes_only_the_called_functions_and_states_a_plain_request() -> None:
    from apigen_local.generation.prompts import request_messages

    other = Tool(name="is_prime", description="Checks whether a number is prime.",
                 parameters={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    call = FunctionCall(name="getdivision", arguments={"dividend": 144, "divisor": 12})
    request = GenerationRequest(index=0, seed=1, style="multiple", tools=[other, DIVIDE], examples=[],
                                min_calls=1, max_calls=1, calls=[call])
    task = request_messages(request)[-1]["content"]
    assert "getdivision: Divides two integers." in task and "is_prime" not in task
    assert "Plain request: Divide two integers: dividend 144, divisor 12." in task


def test_request_candidates_is_a_setting_of_the_run() -> None:
    from apigen_local.cli import build_parser
    from apigen_local.run.config import build_config

    args = build_parser().parse_args(["generate", "--library", "x.py", "--request-candidates", "3"])
    assert args.request_candidates == 3
    config = build_config({"library": "x.py", "request_candidates": 3})
    assert config.mode == "calls_first" and config.identity()["request_candidates"] == 3
    assert build_config({"library": "x.py"}).request_candidates == 1  # one request per drawn call


def test_the_default_temperature_follows_the_mode_and_a_given_one_wins() -> None:
    from apigen_local.run.config import build_config

    assert build_config({"library": "x.py"}).temperature == 0.3  # calls-first: keep to the plain request
    assert build_config({"library": "x.py", "mode": "query_first"}).temperature == 0.7
    given = build_config({"library": "x.py", "temperature": 0.9})
    assert given.temperature == 0.9 and given.identity()["temperature"] == 0.9


def test_the_summary_names_styles_and_functions_the_model_could_not_write(capsys) -> None:
    from apigen_local.cli import _print_stats_summary
    from apigen_local.run.stats import Rate, RunStats

    stats = RunStats(rows=20, accepted=4, styles={"simple": Rate(total=10, passed=4),
                                                  "parallel_multiple": Rate(total=6, passed=0),
                                                  "parallel": Rate(total=4, passed=0)},
                     functions={"getdivision": Rate(total=12, passed=0), "is_prime": Rate(total=8, passed=4)})
    _print_stats_summary(stats)
    out = capsys.readouterr().out
    assert "no row accepted for style parallel_multiple (0 of 6)" in out
    assert "no row accepted for function getdivision (0 of 12)" in out
    assert "parallel (0 of 4)" not in out  # too few rows to say
