"""Break a feature on purpose and check that the tests named for it fail (issues 28 and 31).

Usage: .venv/bin/python scripts/mutations.py [--all] [--only NAME]

Each mutation replaces one piece of source text, runs the tests that claim the feature, expects
them to fail, and restores the file (also on Ctrl-C). Without ``--all`` only the mutations whose
tests need no Docker, model, Ray or browser run (about a minute); ``--all`` runs every one (about
25 minutes on 2 cores: the Ray ones take minutes each). Prints one line per mutation and exits 1
if any mutation survived, i.e. its tests passed with the feature broken.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    fast: bool = False  # its tests need no Docker, model, Ray or browser


MUTATIONS = [
    # -- the run loop (issue 28) ---------------------------------------------------------------
    Mutation("resume starts over (written rows are generated again)", "apigen_local/run/job.py",
             "batches = self.batches({r.id for r in done})", "batches = self.batches(set())",
             ("tests/test_run_loop.py::test_a_resume_does_not_generate_written_rows_again",), fast=True),
    Mutation("a batch is admitted as soon as it is generated, not in batch order",
             "apigen_local/run/backends/base.py",
             "            while admitted in generated:\n"
             "                records = driver.admit(generated.pop(admitted))",
             "            for admitted in sorted(generated)[:1]:\n"
             "                records = driver.admit(generated.pop(admitted))",
             ("tests/test_run_loop.py::test_batches_that_finish_out_of_order_are_admitted_and_written_in_order",),
             fast=True),
    Mutation("stats are written only when the run succeeds", "apigen_local/run/job.py",
             "        finally:\n            self.files.close_files()\n            try:  # the directory",
             "        except BaseException:\n            self.files.close()\n            raise\n"
             "        if True:\n            self.files.close_files()\n            try:  # the directory",
             ("tests/test_run_loop.py::test_a_crash_at_every_point_loses_nothing_written_and_the_rerun_completes",),
             fast=True),
    Mutation("rows that failed grounding are executed too", "apigen_local/run/generate.py",
             'return record.style != "irrelevance" and record.passed_before_execution',
             'return record.style != "irrelevance" and record.format_check.passed',
             ("tests/test_run_loop.py::test_only_rows_that_passed_every_earlier_check_reach_the_sandbox",), fast=True),
    Mutation("an import inside a function closes a cycle", "apigen_local/model/engine.py",
             "def prompt_tokens(llama: Llama, prompt: str) -> list[int]:\n",
             "def prompt_tokens(llama: Llama, prompt: str) -> list[int]:\n"
             "    from .local import Completion  # noqa: F401\n",
             ("tests/test_imports.py",), fast=True),
    # -- tests that prove what they claim (issue 31) ---------------------------------------------
    Mutation("generate wipes its output folder and starts over", "apigen_local/run/files.py",
             "    def open(self, identity: dict[str, Any]) -> list[Record]:\n",
             "    def open(self, identity: dict[str, Any]) -> list[Record]:\n"
             "        import shutil\n        shutil.rmtree(self.dir, ignore_errors=True)\n",
             ("tests/test_pipeline.py::test_resume_after_sigkill_loses_and_duplicates_nothing",)),
    Mutation("the judge rejects every row", "apigen_local/checks/semantic.py",
             '        return Verdict(thought="", passes=True, check=CheckResult.ok(), raw="")',
             '        return Verdict(thought="", passes=False, check=CheckResult.fail("semantic_fail", "x"), raw="")',
             ("tests/test_verify.py::test_correct_rows_pass_and_each_broken_row_fails_with_its_stage_and_reason",)),
    Mutation("a long result is cut to nothing", "sandbox/runner.py",
             '    return text[:limit] + f"... [{len(text) - limit} more characters]"', '    return ""',
             ("tests/security/test_classes.py::test_long_results_are_cut_not_lost",)),
    Mutation("the sandbox calls modules, classes and objects of the library", "sandbox/runner.py",
             "    if not isinstance(target, _FunctionType) or target.__module__ != module.__name__ "
             "or target.__name__ != name:",
             "    if isinstance(target, type(len)) or (isinstance(target, _FunctionType) and "
             "(target.__module__ != module.__name__ or target.__name__ != name)):",
             ("tests/security/test_classes.py::test_only_functions_defined_in_the_library_run",)),
    Mutation("the llguidance constraint allows every token", "apigen_local/model/engine.py",
             "        self.matcher.unsafe_compute_mask_ptr(target.ctypes.data, target.size * target.itemsize)",
             "        target[:] = -1",
             ("tests/test_generation.py::test_two_hundred_pairs_all_parse_and_pass_the_format_checker",)),
    Mutation("batched rows read each other's logits", "apigen_local/model/engine.py",
             "        mask_started = time.perf_counter()\n        n = len(slots)\n",
             "        mask_started = time.perf_counter()\n        n = len(slots)\n"
             "        logits = np.ascontiguousarray(logits[:n][::-1])\n",
             ("tests/test_real_model.py::test_temperature_zero_batched_parts_from_one_at_a_time_only_at_near_ties",)),
    Mutation("batched completions come back in another order", "apigen_local/model/local.py",
             "        return [Completion(text=r.text,",
             "        results = results[::-1]\n        return [Completion(text=r.text,",
             ("tests/test_engine.py::test_generator_generate_many_matches_its_requests",)),
    Mutation("a lost Ray batch is never run again", "apigen_local/run/backends/ray.py",
             "                self._lose(i, exc)\n                heapq.heappush(self.queue, call)\n",
             "                self._lose(i, exc)\n",
             ("tests/test_ray.py::test_killed_worker_rows_run_again",)),
    # -- calls-first yield (issue 38) ------------------------------------------------------------
    Mutation("the description's ranges are not read", "apigen_local/generation/values.py",
             "if (match := _RANGE.search(text)) and", "if False and (match := _RANGE.search(text)) and",
             ("tests/test_values.py::test_the_description_gives_ranges_lists_examples_and_keys",
              "tests/test_values.py::test_with_no_seed_rows_nearly_every_drawn_call_runs"), fast=True),
    Mutation("seed values are varied far beyond their magnitude", "apigen_local/generation/values.py",
             "(value / 2, value * 2) if value > 0", "(value / 20, value * 20) if value > 0",
             ("tests/test_values.py::test_seed_values_are_varied_within_their_kind_and_magnitude",), fast=True),
    Mutation("an optional argument is drawn at its default", "apigen_local/generation/values.py",
             'if name not in required and "default" in schema and value == schema["default"]:',
             "if False:",
             ("tests/test_values.py::test_an_optional_argument_is_drawn_only_with_a_value_other_than_its_default",),
             fast=True),
    Mutation("calls that failed in the sandbox stay in the pool", "apigen_local/generation/calls_first.py",
             "passed = check(drawn) if check is not None and drawn else", "passed = [True] * len(drawn) if True else",
             ("tests/test_values.py::test_a_pool_keeps_only_the_calls_that_ran_and_rows_draw_from_it",
              "tests/test_values.py::test_the_sampler_offers_no_function_without_a_verified_call"), fast=True),
    Mutation("calls-first shows seed rows of several calls", "apigen_local/generation/sampling.py",
             "single = [e for e in order if e.call_count == 1]", "single = list(order)",
             ("tests/test_values.py::test_calls_first_shows_one_call_seed_rows_and_each_call_its_closest_seed_row_last",),
             fast=True),
    Mutation("the closest seed row may set an option the call leaves out", "apigen_local/generation/sampling.py",
             "if keys is not None and keys <= wanted and", "if keys is not None and",
             ("tests/test_values.py::test_calls_first_shows_one_call_seed_rows_and_each_call_its_closest_seed_row_last",
              "tests/test_values.py::test_the_closest_seed_row_sets_the_most_arguments_of_the_call_and_none_it_leaves_out"),
             fast=True),
    Mutation("every part of a row is shown the first call's closest seed row", "apigen_local/generation/sampling.py",
             "closest = self.closest[position] if position < len(self.closest) else None",
             "closest = self.closest[0] if self.closest else None",
             ("tests/test_values.py::test_calls_first_shows_one_call_seed_rows_and_each_call_its_closest_seed_row_last",),
             fast=True),
    Mutation("calls-first rows are grounded whole, not call by call", "apigen_local/checks/part.py",
             "if outcome.passed and calls_first:", "if False:",
             ("tests/test_part_check.py::test_a_generate_run_grounds_each_call_in_its_own_request_in_calls_first_mode",
              "tests/test_part_check.py::test_labelled_rows_are_grounded_part_by_part_only_when_written_calls_first"),
             fast=True),
    Mutation("a call's own request is not checked", "apigen_local/checks/part.py",
             "        outcome = _check_part(part, call, tools, string_bound)\n        if not outcome.passed:",
             "        outcome = _check_part(part, call, tools, string_bound)\n        if False:",
             ("tests/test_part_check.py::test_each_call_is_checked_against_its_own_request",), fast=True),
    Mutation("a generate run grounds every row as written query-first", "apigen_local/run/generate.py",
             'calls_first=self.config.mode == "calls_first"', "calls_first=False",
             ("tests/test_part_check.py::test_a_generate_run_grounds_each_call_in_its_own_request_in_calls_first_mode",),
             fast=True),
    Mutation("labelled calls-first rows are grounded whole", "apigen_local/run/labels.py",
             'calls_first=row.mode == "calls_first"', "calls_first=False",
             ("tests/test_part_check.py::test_labelled_rows_are_grounded_part_by_part_only_when_written_calls_first",),
             fast=True),
    Mutation("a string of symbols passes grounding unstated", "apigen_local/checks/grounding.py",
             "return STATED if symbols_stated(value, query) else None", "return PASSED_ON",
             ("tests/test_grounding.py::test_a_string_of_symbols_is_grounded_only_when_written_apart_or_named",),
             fast=True),
    Mutation("a query that answers its own question is a request", "apigen_local/checks/request.py",
             "if _ANSWERED_RE.search(query):", "if False:",
             ("tests/test_request_checks.py::test_a_query_that_answers_its_own_question_is_not_a_request",), fast=True),
    Mutation("a loop of more than four words is a request", "apigen_local/checks/request.py",
             "LOOP_WORDS = 8", "LOOP_WORDS = 4",
             ("tests/test_request_checks.py::test_a_query_a_model_wrote_while_looping_is_not_a_request",), fast=True),
    Mutation("calls-first samples at query-first's temperature", "apigen_local/run/config.py",
             '"calls_first": 0.3}', '"calls_first": 0.7}',
             ("tests/test_request_candidates.py::test_the_default_temperature_follows_the_mode_and_a_given_one_wins",),
             fast=True),
    Mutation("the first candidate request is always kept", "apigen_local/generation/generator.py",
             "if query is not None and self.choose(query, self.request.calls[part], self.request.tools):",
             "if False:",
             ("tests/test_request_candidates.py::test_the_first_candidate_that_states_its_call_is_kept_and_the_parts_are_joined",),
             fast=True),
    Mutation("a call stated at once is written again anyway", "apigen_local/generation/generator.py",
             "if self.kept[part] is None and self.started[part] < self.limit]",
             "if self.started[part] < self.limit]",
             ("tests/test_request_candidates.py::test_a_call_gets_another_request_only_while_none_states_it",),
             fast=True),
    Mutation("calls-first writes three requests per call by default", "apigen_local/run/config.py",
             "request_candidates: int = Field(1,", "request_candidates: int = Field(3,",
             ("tests/test_request_candidates.py::test_request_candidates_is_a_setting_of_the_run",), fast=True),
    Mutation("a list's next enumerated item passes coverage", "apigen_local/checks/coverage.py",
             'if following["joint"].strip() != "," or item.casefold() in {other.casefold() for other in others}:',
             "if False:", ("tests/test_coverage.py::test_coverage",), fast=True),
    Mutation("a drawn flag passes unnamed", "apigen_local/checks/part.py",
             "        if own and not own & said:\n            return name",
             "        if False:\n            return name",
             ("tests/test_part_check.py::test_a_drawn_option_is_asked_for_and_an_asked_option_is_drawn",), fast=True),
    Mutation("an asked option the call leaves at its default passes", "apigen_local/checks/part.py",
             "if len(named) == 1 and held != named[0]:", "if False:",
             ("tests/test_part_check.py::test_a_drawn_option_is_asked_for_and_an_asked_option_is_drawn",), fast=True),
    Mutation("'how many ways' fits any function", "apigen_local/checks/part.py",
             "    if counts_ways(query, tool):", "    if False:",
             ("tests/test_part_check.py::test_how_many_ways_needs_arrangements_and_a_request_cut_at_its_bound_is_not_one",),
             fast=True),
    Mutation("a request cut at its bound passes", "apigen_local/checks/part.py",
             "    if len(query) >= REQUEST_MAX_CHARS:", "    if False:",
             ("tests/test_part_check.py::test_how_many_ways_needs_arrangements_and_a_request_cut_at_its_bound_is_not_one",),
             fast=True),
    Mutation("a list's items are looked for across sentences", "apigen_local/checks/coverage.py",
             "    if _SENTENCE_END_RE.search(query, min(starts), max(ends)):", "    if False:",
             ("tests/test_coverage.py::test_coverage",), fast=True),
    Mutation("the name of the other list does not start it", "apigen_local/checks/coverage.py",
             "    if item.split()[0].casefold() in {label.casefold() for label in labels}:", "    if False:",
             ("tests/test_coverage.py::test_coverage",), fast=True),
    Mutation("two lists of a call may run together", "apigen_local/checks/coverage.py",
             'if following["joint"].strip() != "," or item.casefold() in {other.casefold() for other in others}:',
             'if following["joint"].strip() != ",":', ("tests/test_coverage.py::test_coverage",), fast=True),
    Mutation("an allowed value passes grounding unnamed", "apigen_local/checks/grounding.py",
             "if len(enum) == 1 or enum_named(value, query):", "if True:",
             ("tests/test_grounding.py::test_an_allowed_value_the_query_does_not_name_is_not",), fast=True),
    Mutation("the round trip compares functions only", "apigen_local/checks/semantic.py",
             "if same_calls(calls, distinct) else", "if same_functions(calls, distinct) else",
             ("tests/test_round_trip.py::test_the_round_trip_design_passes_only_the_same_calls",), fast=True),
    Mutation("the shared prefix is the longest two rows share", "apigen_local/model/engine.py",
             "if len(prefix) * (len(on) - 1) > saved:", "if True:",
             ("tests/test_engine.py::test_shared_prefix_follows_the_majority_and_saves_the_most",), fast=True),
    # -- trainer-ready exports (issue 41) --------------------------------------------------------
    Mutation("the messages export writes arguments as a JSON string", "apigen_local/run/messages.py",
             "arguments: Any = json.dumps(call.arguments, ensure_ascii=False) if json_strings else call.arguments",
             "arguments: Any = json.dumps(call.arguments, ensure_ascii=False)",
             ("tests/test_export_messages.py::test_every_row_renders_through_a_real_template_with_its_calls_as_objects",),
             fast=True),
    Mutation("the messages export leaves tools as objects with --json-strings", "apigen_local/run/messages.py",
             '"tools": json.dumps(tools, ensure_ascii=False) if json_strings else tools}', '"tools": tools}',
             ("tests/test_export_messages.py::test_the_json_string_form_loads_with_datasets_and_reads_back_to_the_object_form",),
             fast=True),
    # -- the third hostile round, the run folder (issue 42) ------------------------------------------
    Mutation("the records reader breaks lines where str.splitlines does", "apigen_local/jsonl.py",
             'enumerate(data.split(b"\\n"), start=1)',
             'enumerate([x.encode("utf-8", "surrogateescape") for x in data.decode("utf-8", "surrogateescape")'
             '.splitlines()], start=1)',
             ("tests/security/test_round_three.py::test_a_run_whose_queries_hold_line_separators_resumes_and_exports",),
             fast=True),
    Mutation("a run folder's files are opened through symbolic links", "apigen_local/run/files.py",
             "flags | os.O_NOFOLLOW | os.O_NONBLOCK", "flags | os.O_NONBLOCK",
             ("tests/security/test_round_three.py::test_a_link_in_a_shared_run_folder_is_refused_and_its_target_untouched",
              "tests/security/test_round_three.py::test_reading_labels_never_follows_a_link"), fast=True),
    Mutation("an export is written into its target as it goes", "apigen_local/cli.py",
             "with atomic_file(Path(os.path.realpath(args.out))) as handle:",
             'with open(args.out, "w", encoding="utf-8") as handle:',
             ("tests/security/test_round_three.py::test_a_failed_export_leaves_the_earlier_export_whole",), fast=True),
    Mutation("a full disk is reported as any other write error", "apigen_local/errors.py",
             "if exc.errno in (errno.ENOSPC, errno.EDQUOT):", "if False:",
             ("tests/security/test_round_three.py::test_a_full_disk_mid_run_is_one_error_and_the_rerun_completes",
              "tests/security/test_round_three.py::test_export_to_a_missing_folder_or_a_full_disk_is_one_line"),
             fast=True),
    Mutation("a lenient load stops at a function whose inspection raises", "apigen_local/tools.py",
             "except (Exception, SystemExit) as exc:  # a type hint", "except SystemExit as exc:  # a type hint",
             ("tests/security/test_round_three.py::test_lenient_loading_skips_functions_whose_inspection_raises_by_name",),
             fast=True),
    # -- where models live (issue 43) ------------------------------------------------------------
    Mutation("models are looked for in ~/apigen-local, not in the user's cache", "apigen_local/model/files.py",
             "folders.append(ModelFolder(user_models_dir(), cache))",
             'folders.append(ModelFolder(Path.home() / "apigen-local" / "models", cache))',
             ("tests/test_model_home.py::test_model_find_lists_the_folders_in_order_and_finds_the_model_in_the_users_cache",
              "tests/test_model_home.py::test_generate_resolves_its_model_from_the_cache_with_no_model_given"),
             fast=True),
    Mutation("calibrate --labels demands a model", "apigen_local/cli.py",
             "model_file = find_model(args.model).resolve() if args.model or args.fit_margin is not None else None",
             "model_file = find_model(args.model).resolve()",
             ("tests/test_model_home.py::test_calibrate_labels_runs_with_no_model_and_keeps_nothing_for_any_model",),
             fast=True),
    # -- a new user's second round (issue 43) --------------------------------------------------------
    Mutation("a resume ignores an edited library", "apigen_local/run/generate.py",
             '"library_source": library_identity(self.library)}',
             '"library_source": library_identity(self.library)["path"]}',
             ("tests/test_new_user_two.py::test_a_resume_with_an_edited_library_is_refused_naming_it",), fast=True),
    Mutation("the first batch is a whole batch", "apigen_local/run/job.py",
             "start, step = 0, 1", "start, step = 0, size",
             ("tests/test_new_user_two.py::test_the_first_row_is_written_after_one_row_of_work",), fast=True),
    Mutation("a run whose output is not a terminal gets the live bar", "apigen_local/cli.py",
             "if console.is_terminal else LineProgress(console, label=label)",
             "if True else LineProgress(console, label=label)",
             ("tests/test_new_user_two.py::test_a_run_whose_output_is_not_a_terminal_prints_a_line_every_few_rows",),
             fast=True),
    # -- tool specs reach the network or stall a run (round three) ----------------------------------
    Mutation("the format check's validators fetch remote references", "apigen_local/checks/format.py",
             "_Validator(json.loads(text), registry=_NO_REMOTE)", "_Validator(json.loads(text))",
             ("tests/security/test_round_three_specs.py::"
              "test_the_validator_fetches_nothing_even_for_a_tool_built_directly",), fast=True),
    Mutation("a row's tool spec is read without following its references", "apigen_local/tool_specs.py",
             "    return _reference_problem(schema)\n", "    return None\n",
             ("tests/security/test_round_three_specs.py::"
              "test_references_outside_the_spec_are_refused_and_nothing_connects",
              "tests/security/test_round_three_specs.py::"
              "test_dangling_and_looping_local_references_fail_their_row_alone"), fast=True),
    Mutation("patterns are searched by re, with no time bound", "apigen_local/checks/format.py",
             '    "pattern": _pattern, "patternProperties"', '    "patternProperties"',
             ("tests/security/test_round_three_specs.py::test_a_backtracking_pattern_is_unchecked_not_run_to_its_end",),
             fast=True),
    # -- the library changes the runner's own state at import (round three) -----------------------
    Mutation("the runner encodes with the json the library patched", "sandbox/runner.py",
             "json = _private_json()\n", "import json  # noqa: E402\n",
             ("tests/security/test_round_three_runner.py::"
              "test_what_the_library_changes_at_import_is_its_own_not_the_runners",)),
    Mutation("a library process is kept whatever its import left (threads, shared memory)", "sandbox/runner.py",
             "                if not healthy or library.shared is not None:",
             "                if not healthy:",
             ("tests/security/test_round_three_runner.py::"
              "test_a_lock_in_shared_memory_a_failed_call_took_is_free_for_the_next",
              "tests/security/test_round_three_runner.py::"
              "test_threads_timers_and_exit_handlers_of_the_library_hold_nothing")),
    # -- a new user's second round (issue 43): checks, seed, export -----------------------------------
    Mutation("'please' makes no request", "apigen_local/checks/request.py",
             'or "please" in words[1:]:', ":",
             ("tests/test_request_checks.py::test_imperatives_and_polite_requests_of_a_shop_are_requests",),
             fast=True),
    Mutation("a string cut at the query's punctuation is a value", "apigen_local/checks/grounding.py",
             "if fragment(text):", "if False:",
             ("tests/test_new_user_two.py::test_invented_allowed_values_and_cut_pieces_are_not_grounded",), fast=True),
    Mutation("BFCL keeps null in an optional parameter's type", "apigen_local/bfcl/export.py",
             "    schema = _without_null(schema)\n", "",
             ("tests/test_new_user_two.py::test_an_optional_parameter_keeps_its_type_in_the_bfcl_export",), fast=True),
    Mutation("seed drafts are not run", "apigen_local/cli.py",
             "check=worker.calls_that_run)", "check=None)",
             ("tests/test_seed_draft.py::test_drafts_run_in_the_sandbox_and_the_first_one_shows_the_options",)),
    Mutation("a looping query is a request", "apigen_local/checks/request.py",
             "    if repeated is not None:\n", "    if False:\n",
             ("tests/test_request_checks.py::test_a_query_a_model_wrote_while_looping_is_not_a_request",), fast=True),
    # -- contention (issue 44) -----------------------------------------------------------------
    Mutation("libgomp keeps its long spin at barriers", "apigen_local/model/__init__.py",
             "\nwait_briefly_at_barriers()  #", "\nNone and wait_briefly_at_barriers()  #",
             ("tests/test_contention.py::test_libgomp_spins_briefly_unless_the_user_chose_or_llama_cpp_loaded_first",),
             fast=True),
    Mutation("the wait share counts running as waiting", "apigen_local/model/cpu.py",
             "round(waiting / (running + waiting), 4)", "round(running / (running + waiting), 4)",
             ("tests/test_contention.py::test_the_clock_measures_the_share_of_time_spent_waiting_for_a_core",),
             fast=True),
    Mutation("a row's generation timings drop the wait", "apigen_local/run/worker.py",
             'timings["generation_waiting"] = round(seconds * completion.core_wait, 4)', "pass",
             ("tests/test_contention.py::test_a_rows_generation_timings_carry_the_seconds_it_waited_for_a_core",),
             fast=True),
    Mutation("the contention warning repeats on every row", "apigen_local/run/progress.py",
             "        self._warned = True\n", "",
             ("tests/test_contention.py::test_the_watch_warns_once_when_the_recent_rows_waited_for_a_core_most_of_the_time",),
             fast=True),
    # -- backends as objects, and the layers (issue 39) -----------------------------------------
    Mutation("generate runs in this process whatever backend it was given", "apigen_local/run/generate.py",
             "super().__init__(config.out_dir, progress, runs_on or InProcess())",
             "super().__init__(config.out_dir, progress, InProcess())",
             ("tests/test_run_loop.py::test_a_backend_is_an_object_the_caller_passes_to_generate_and_verify",),
             fast=True),
    Mutation("the run loop imports the review page", "apigen_local/run/job.py",
             "from .review_figures import run_review\n",
             "from .review_figures import run_review\nfrom ..review import session  # noqa: F401\n",
             ("tests/test_imports.py::test_no_part_imports_one_above_it_and_run_never_imports_review",), fast=True),
    Mutation("export to /dev/stdout reopens it for writing", "apigen_local/cli.py",
             'with open(args.out, "a", encoding="utf-8") as handle:',
             'with open(args.out, "w", encoding="utf-8") as handle:',
             ("tests/security/test_round_three.py::"
              "test_export_to_standard_output_streams_and_never_replaces_what_it_is_redirected_to",), fast=True),
]


def run(mutation: Mutation) -> tuple[bool, float]:
    """Apply ``mutation``, run its tests, restore; True when the tests failed (the mutation died)."""
    path = ROOT / mutation.file
    original = path.read_text()
    if original.count(mutation.old) != 1:
        raise SystemExit(f"{mutation.name}: the text to replace is not in {mutation.file} exactly once")
    started = time.perf_counter()
    path.write_text(original.replace(mutation.old, mutation.new))
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                               *mutation.tests], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    finally:
        path.write_text(original)
    return done.returncode != 0, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="also the mutations whose tests need real parts")
    parser.add_argument("--only", help="run the mutations whose name contains this text")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if (args.all or m.fast) and (not args.only or args.only in m.name)]
    survived = 0
    for mutation in chosen:
        died, seconds = run(mutation)
        survived += not died
        print(f"{'killed  ' if died else 'SURVIVED'} {seconds:6.1f} s  {mutation.name}  ({', '.join(mutation.tests)})",
              flush=True)
    print(f"{len(chosen) - survived}/{len(chosen)} mutations made their tests fail")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
