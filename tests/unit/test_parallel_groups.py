"""The integration tier's parallel runs keep a test module in one process (`make integration`).

Runs pytest-xdist the way the Makefile does on generated modules whose tests record their process:
every module must run whole in one process, or its module-scoped fixtures would run once per process.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def makefile_dist() -> list[str]:
    """The xdist options of the Makefile's integration target."""
    text = (REPO / "Makefile").read_text()
    found = re.search(r"-n \$\(TEST_WORKERS\) (--dist \w+)", text)
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
