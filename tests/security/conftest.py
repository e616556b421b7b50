"""Shared pieces of the security tests: the labelled-container check and the containment table.

Every hostile case adds a row to the table (case, observed outcome, time to contain). It is
written to ``/tmp/apigen-security-table.md`` and shown in pytest's terminal summary.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from apigen_local.sandbox.executor import LABEL_PID, LABEL_RUN

TABLE_PATH = Path("/tmp/apigen-security-table.md")
TABLE: list[tuple[str, str, float]] = []


def record_case(case: str, outcome: str, seconds: float) -> None:
    """Add one hostile case and what happened to it to the containment table."""
    TABLE.append((case, outcome.replace("|", "/").replace("\n", " "), seconds))


def labelled_containers(client, pid: int | None = None) -> list[dict]:
    """Sandbox containers (running or not) labelled by process ``pid`` (default: this one)."""
    labels = [LABEL_RUN, f"{LABEL_PID}={pid or os.getpid()}"]
    return client.api.containers(all=True, filters={"label": labels})


@pytest.fixture
def no_leftovers(docker_client) -> Iterator[None]:
    """Fail the test if any container it started is still there afterwards."""
    yield
    left = labelled_containers(docker_client)
    assert left == [], f"containers left behind: {[c['Id'][:12] for c in left]}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show the containment table after the run and keep a copy in :data:`TABLE_PATH`."""
    if not TABLE:
        return
    lines = ["| hostile case | observed outcome | time to contain |", "|---|---|---|"]
    lines += [f"| {case} | {outcome} | {seconds:.3f} s |" for case, outcome, seconds in TABLE]
    TABLE_PATH.write_text("\n".join(lines) + "\n")
    terminalreporter.write_sep("-", f"containment table (also in {TABLE_PATH})")
    for line in lines:
        terminalreporter.write_line(line)
