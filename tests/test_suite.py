"""The suite's own rules: in CI a skipped test fails the run, every subprocess a test starts and every test has a time
limit."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO

TESTS = Path(__file__).parent

SKIPPING = """
import pytest

@pytest.fixture
def cluster():
    pytest.skip("no cluster here")

def test_skips_itself():
    pytest.skip("no browser here")

@pytest.mark.skipif(True, reason="not on this machine")
def test_marked():
    pass

def test_in_a_fixture(cluster):
    pass

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_to_fail():
    assert False

def test_runs():
    pass
"""
IMPORTING = 'import pytest\n\npytest.importorskip("a_package_that_is_not_installed")\n\n\ndef test_never():\n    pass\n'


def run_pytest(folder: Path, switch: str | None) -> subprocess.CompletedProcess:
    """pytest on ``folder`` with only the hooks of tests/skips.py (none of this suite's options or fixtures)."""
    (folder / "pytest.ini").write_text("[pytest]\n")
    env = {key: value for key, value in os.environ.items() if key != "CIFARFLOW_NO_SKIP"}
    env |= {"PYTHONPATH": str(TESTS)} | ({"CIFARFLOW_NO_SKIP": switch} if switch is not None else {})
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "skips", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-rA", str(folder)], capture_output=True, text=True, cwd=folder, env=env, timeout=120)


def closing_counts(result: subprocess.CompletedProcess) -> dict[str, int]:
    line = result.stdout.strip().splitlines()[-1]
    return {word: int(count) for count, word in re.findall(r"(\d+) (\w+)", line)}


def test_every_skip_fails_with_the_switch_and_only_then(tmp_path):
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    allowed = run_pytest(tmp_path, None)
    assert allowed.returncode == 0, allowed.stdout
    assert closing_counts(allowed) == {"passed": 1, "skipped": 3, "xfailed": 1}
    assert run_pytest(tmp_path, "0").returncode == 0

    refused = run_pytest(tmp_path, "1")
    assert refused.returncode == 1
    # the test that skips itself fails; the marked one and the one whose fixture skipped, in their setup: errors
    assert closing_counts(refused) == {"failed": 1, "passed": 1, "xfailed": 1, "errors": 2}
    for reason in ("no cluster here", "no browser here", "not on this machine"):
        assert re.search(f"{reason}.* -- and CIFARFLOW_NO_SKIP=1 makes every skip a failure", refused.stdout), reason


def test_a_test_file_skipped_whole_fails_with_the_switch(tmp_path):
    (tmp_path / "test_importing.py").write_text(IMPORTING)
    assert closing_counts(run_pytest(tmp_path, None)) == {"skipped": 1}
    refused = run_pytest(tmp_path, "1")
    assert refused.returncode != 0 and "1 error" in refused.stdout.splitlines()[-1]
    assert re.search("a_package_that_is_not_installed.* -- and CIFARFLOW_NO_SKIP=1 makes every skip a failure",
                     refused.stdout)


def test_a_misspelt_switch_stops_the_run_in_one_line(tmp_path):
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    result = run_pytest(tmp_path, "yes")
    assert result.returncode == 4 and "Traceback" not in result.stdout + result.stderr
    assert "CIFARFLOW_NO_SKIP must be 1 (every skip fails) or 0 (skips allowed), not 'yes'" in result.stderr


def test_ci_runs_every_pytest_with_the_switch():
    lines = (REPO / ".ci/run").read_text().splitlines()
    switch = lines.index("export CIFARFLOW_NO_SKIP=1")
    runs = [number for number, line in enumerate(lines) if re.search(r"(^|\s)pytest\s", line)]
    assert runs and min(runs) > switch
    assert not [line for line in lines if "CIFARFLOW_NO_SKIP=0" in line or "unset CIFARFLOW_NO_SKIP" in line]


BLOCKING = {"run", "call", "check_call", "check_output", "wait", "communicate"}


def unbounded_waits(path: Path) -> list[str]:
    """Calls in ``path`` that wait for a process without a timeout: subprocess.run (call, check_call, check_output),
    and a Popen's wait or communicate."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in BLOCKING):
            continue
        owner = node.func.value
        waits_on_subprocess = isinstance(owner, ast.Name) and owner.id == "subprocess"
        waits_on_process = node.func.attr in ("wait", "communicate") and not waits_on_subprocess
        if (waits_on_subprocess or waits_on_process) and "timeout" not in {keyword.arg for keyword in node.keywords}:
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_every_process_a_test_waits_for_has_a_timeout():
    assert [line for path in sorted(TESTS.glob("*.py")) for line in unbounded_waits(path)] == []


def test_the_scan_finds_a_wait_without_timeout(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import subprocess\nsubprocess.run(['true'])\np = subprocess.Popen(['true'])\np.wait()\n"
                     "subprocess.run(['true'], timeout=5)\np.wait(timeout=5)\n")
    assert [line.split(":")[1] for line in unbounded_waits(probe)] == ["2", "4"]


def test_every_test_has_a_time_limit(request):
    assert float(request.config.getini("timeout")) > 0
