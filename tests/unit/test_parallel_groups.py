"""The integration tier's parallel runs keep a test module in one process (`make integration`).

Runs pytest-xdist the way the Makefile does on generated modules whose tests record their process:
every module must run whole in one process, or its module-scoped fixtures would run once per process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests import ordering

REPO = Path(__file__).resolve().parents[2]


def makefile_dist() -> list[str]:
    """The xdist options of the Makefile's integration target."""
    text = (REPO / "Makefile").read_text()
    found = re.search(r"-n \$\(TEST_WORKERS\) (--dist \w+(?: --[\w-]+)*)", text)
    assert found, "the integration target runs in parallel"
    return found.group(1).split()


def test_each_module_runs_whole_in_one_process(tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    for module in range(4):
        tests = "\n".join(f"def test_{index}(where):\n    where('m{module}')\n" for index in range(6))
        (tmp_path / f"test_m{module}.py").write_text(
            "import os, pytest\n"
            "@pytest.fixture(scope='module')\n"
            "def where():\n"
            f"    def note(name):\n        open({str(record)!r}, 'a').write(f'{{name}} {{os.getpid()}}\\n')\n"
            "    return note\n" + tests
        )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-n",
            "3",
            *makefile_dist(),
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    processes: dict[str, set[str]] = {}
    for line in record.read_text().splitlines():
        name, pid = line.split()
        processes.setdefault(name, set()).add(pid)
    assert sorted(processes) == ["m0", "m1", "m2", "m3"]
    assert all(len(pids) == 1 for pids in processes.values()), processes
    assert len(set().union(*processes.values())) > 1  # and the modules did spread over processes


def test_modules_are_handed_out_longest_first(tmp_path: Path) -> None:
    """With the Makefile's options and tests/ordering.py, one process runs the modules by measured
    time, longest first and an unmeasured one last, each module's tests in file order."""
    record = tmp_path / "record.txt"
    times = {"test_short.py": 1.0, "test_long.py": 90.0, "test_middle.py": 20.0}
    for name in [*times, "test_new.py"]:
        tests = "\n".join(
            f"def test_{index}():\n    open({str(record)!r}, 'a').write('{name} {index}\\n')\n"
            for index in range(3)
        )
        (tmp_path / name).write_text(tests)
    times_file = tmp_path / "times.json"
    times_file.write_text(json.dumps(times))
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.ordering"),
            *("-n", "1", *makefile_dist(), str(tmp_path)),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), ordering.TIMES_ENV: str(times_file)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ran = [line.split() for line in record.read_text().splitlines()]
    modules = ["test_long.py", "test_middle.py", "test_short.py", "test_new.py"]
    assert ran == [[module, str(index)] for module in modules for index in range(3)]


def test_module_times_come_from_the_junit_report(tmp_path: Path) -> None:
    (tmp_path / "tests" / "integration").mkdir(parents=True)
    (tmp_path / "tests" / "integration" / "test_a.py").write_text("")
    report = tmp_path / "report.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.integration.test_a" name="test_one" time="2.5"/>'
        '<testcase classname="tests.integration.test_a.TestGroup" name="test_two" time="1.25"/>'
        '<testcase classname="tests.integration.test_gone" name="test_three" time="9"/>'
        "</testsuite></testsuites>"
    )
    assert ordering.times_from_junit(report, tmp_path) == {"tests/integration/test_a.py": 3.8}


def test_the_checked_in_times_name_existing_modules() -> None:
    times = ordering.load_times(ordering.TIMES)
    assert times, "tests/module_times.json: run make test, then make test-times"
    missing = [module for module in times if not (REPO / module).is_file()]
    assert not missing, f"{missing}: refresh tests/module_times.json with make test-times"
