"""The not-a-request and repeated-call checks, on rows the default model really wrote (issue 29)."""

from __future__ import annotations

import pytest

from apigen_local.checks.request import NOT_A_REQUEST, REPEATED_CALL, check_repeats, check_request, is_request
from apigen_local.checks.semantic import SemanticChecker
from apigen_local.types import FunctionCall, Tool

GCD = Tool(name="greatest_common_divisor", description="Finds the greatest common divisor of a list of whole numbers.",
           parameters={"type": "object", "properties": {"numbers": {"type": "array", "items": {"type": "integer"}}},
                       "required": ["numbers"]})
SLUG = Tool(name="slugify", description="Turns a title into a URL slug of lowercase words joined by a separator.",
            parameters={"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]})
TALLY = Tool(name="tally", description="Tallies votes per candidate.")


@pytest.mark.parametrize("query", [
    "The greatest common divisor of 10 and 11 is 11",  # a statement of the answer
    "soulsearch",  # a bare word
    "The best-fitting function to find the first appearance of Disney's Elsa is",
    "Quarterly budget review",
    "Finds the greatest common divisor of a list of whole numbers.",  # a function's description
])
def test_statements_and_fragments_are_not_requests(query: str) -> None:
    verdict = check_request(query, [GCD, SLUG])
    assert not verdict.passed and verdict.reason == NOT_A_REQUEST


@pytest.mark.parametrize("query", [
    "What is the greatest common divisor of 84, 126 and 210?",
    "Make a slug of 'Hello World From Python' that uses underscores between words.",
    "I weigh 72 kg and I am 1.78 m tall. What is my BMI?",
    "Please convert 5 km to miles",
    "Could you tell me how many days are between 2024-01-15 and 2024-12-25",
    "Divide 365 by 24.",
    "Tally the votes for Bob and Alice.",  # the verb the offered function's description opens with
])
def test_questions_and_instructions_are_requests(query: str) -> None:
    assert is_request(query, [GCD, SLUG, TALLY])


@pytest.mark.parametrize("query", [  # requests people wrote (BFCL's live rows)
    "Play the song 'Friends' by Marshmello",
    "Switch air conditioner to air dry mode with a medium wind strength",
    "Reschedule event 'Bob-123' to November 1, 2023 at 4pm London time",
    "I've submitted a complaint and would like to discuss its status with a human agent.",
])
def test_imperatives_of_assistant_requests_are_requests(query: str) -> None:
    assert is_request(query)


@pytest.mark.parametrize("query", [
    "Tôi cần một chuyến Uber loại 'Plus' từ địa chỉ 123 Đường Đại học, Berkeley, CA 94704.",
    "집에 있는 LG ThinQ 에어컨을 제습 모드로 설정하고 싶어요.",
    "获取阿迪达斯的工单",
    "Quiero calcular el pago mensual para un crédito de auto de 1,000,000 de pesos a 12 meses.",
])
def test_a_query_in_another_language_passes_unjudged(query: str) -> None:
    verdict = check_request(query)
    assert verdict.passed and verdict.detail == "not judged: the query is not in English"


@pytest.mark.parametrize("query", [
    "The image contains the Coca-Cola logo, which is a registered trademark.",
    "Sure, here is the answer to the question: logistic regression is not in the text.",
    "Weather Paris tomorrow",  # no English function word, but none of another language either
    "The price is 20 euros para todos",  # one foreign word among English ones
])
def test_english_statements_are_still_judged(query: str) -> None:
    assert check_request(query).reason == NOT_A_REQUEST


def test_a_call_repeated_without_being_asked_is_rejected() -> None:
    call = FunctionCall(name="permutation_count", arguments={"n": 5, "k": 4})
    verdict = check_repeats("How many ways can 4 of 5 runners finish?", [call, call, call])
    assert not verdict.passed and verdict.reason == REPEATED_CALL
    assert check_repeats("Compute permutations of 4 from 5, twice please.", [call, call]).passed
    other = FunctionCall(name="permutation_count", arguments={"n": 6, "k": 4})
    assert check_repeats("How many ways for 4 of 5, and 4 of 6?", [call, other]).passed


def test_the_semantic_stage_runs_both_checks_before_coverage() -> None:
    judge = SemanticChecker(None)
    statement = judge.judge("The greatest common divisor of 10 and 11 is 11", [GCD],
                            [FunctionCall(name="greatest_common_divisor", arguments={"numbers": [10, 11]})], [], seed=0)
    assert statement.check.reason == NOT_A_REQUEST
    call = FunctionCall(name="slugify", arguments={"title": "My Trip"})
    repeated = judge.judge("Make a slug of 'My Trip'.", [SLUG], [call, call], [], seed=0)
    assert repeated.check.reason == REPEATED_CALL


@pytest.mark.parametrize("query", [  # a new user's own seed rows (issue 43), and more of their kind
    "Use code GREEN20 on a total of 120 pounds.",
    "Quote express delivery of 4 kg to M1 2AB, please.",
    "Restock 12 lavender plants for the Leeds shop.",
    "One-line version of this address please: street 5 Rue de Rivoli, city Paris, postcode 75001.",
    "Refund order 5521 to my card, please.",
    "Water plan for my tomatoes in July, please.",
    "Please turn the lights on.",  # requests may end with a preposition
    "Switch the heater on.",
    "Tell me which airport my flight leaves from.",
    "Find out what my balance is.",
])
def test_imperatives_and_polite_requests_of_a_shop_are_requests(query: str) -> None:
    assert check_request(query).passed


@pytest.mark.parametrize("query", [
    "add_basket_to_basket(budget, finance, loyalty_card)",  # a call written out
    "check_stock(plant='lavender', shop=\"Leeds\")",
    "watering_plan plant rose season spring",  # a snake_case name opening the query
    "Encrypt text with Caesar cipher with the key of",  # cut short
    "Find the first appearance of Star Wars Planet Kamino by a",
    "Use a separator of",
])
def test_code_and_cut_off_queries_are_not_requests(query: str) -> None:
    assert check_request(query).reason == NOT_A_REQUEST


def test_a_request_with_bracketed_groups_is_not_code() -> None:
    assert check_request("Add (2, 3), (3, 4)?").passed
    assert check_request("Sum the pairs (1, 2) and (3, 4)").passed


@pytest.mark.parametrize("query", [
    "How to convert Celsius to Fahrenheit and Kelvin (180.0, 0.0, 0.0, 180.0, 180.0, 180.0, 180.0, 180.0",
    "Sort the list of names alphabetically by first name by first name by first name by first name",
    "How many dollars are there in a dollar amount of a dollar amount of a dollar amount of a dollar amount of a",
    # a run of six words (a dev row of issue 38)
    "Convert a temperature between Celsius, Fahrenheit, and Kelvin scales. 300, to Celsius, to Fahrenheit, to "
    "Kelvin, to Celsius, to Fahrenheit, to Kelvin, to Celsius, to Fahrenheit, to Kelvin, to Celsius, to Fahrenheit, "
    "to Kelvin, to Celsius",
])
def test_a_query_a_model_wrote_while_looping_is_not_a_request(query: str) -> None:
    verdict = check_request(query)
    assert verdict.reason == NOT_A_REQUEST and "times in a row" in verdict.detail


@pytest.mark.parametrize(("query", "is_request"), [
    ("Is n 340 prime? Yes. Please provide a number.", False),
    ("Is the number 340 a prime number? Yes, 340 is a prime number.", False),
    ("Is 340 prime? No, it is even.", False),
    ("Is 340 prime? No rush, tell me when you can.", True),
    ("Is 340 prime? And is 341?", True),
])
def test_a_query_that_answers_its_own_question_is_not_a_request(query: str, is_request: bool) -> None:
    assert check_request(query).passed is is_request


@pytest.mark.parametrize("query", [
    "What's the top word in 'buffalo buffalo Buffalo buffalo', and the top 3 in 'a rose is a rose is a rose'?",
    "Divide 12 by 4, then 4 by 4, then 4 by 4.",  # a pair said three times
    'Count the words in "no no no no no".',
])
def test_repeats_inside_quotes_or_fewer_than_four_times_are_requests(query: str) -> None:
    assert check_request(query).passed
