"""The controller benchmark's measures: percentiles, CPU and RSS from /proc, requests per user (audit log),
and the reconciles the controller counts on its metrics endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from datetime import datetime
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    return total


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Audit:
    """Requests per user from the API server's audit log, between two marks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def count_since(self, start: datetime, end: datetime) -> dict[str, dict[str, int]]:
        """{user: {verb resource: requests}} for requests received in [start, end)."""
        counts: dict[str, dict[str, int]] = {}
        with self.path.open() as log:
            log.seek(self.offset)
            for line in log:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                received = datetime.fromisoformat(entry["requestReceivedTimestamp"].replace("Z", "+00:00"))
                if not start <= received < end:
                    continue
                ref = entry.get("objectRef") or {}
                key = f"{entry.get('verb')} {ref.get('resource', entry.get('requestURI', ''))}"
                if ref.get("subresource"):
                    key += f"/{ref['subresource']}"
                per_user = counts.setdefault(entry["user"]["username"], {})
                per_user[key] = per_user.get(key, 0) + 1
        return counts


def busiest_processes(limit: int = 8) -> list[str]:
    """What else used the CPU (the machine is shared): `ps` sorted by CPU share."""
    out = subprocess.run(
        ["ps", "-eo", "pcpu,rss,comm,args", "--sort=-pcpu"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    return [line[:160] for line in out[1 : limit + 1]]


def reconciles(metrics_port: int) -> float:
    """The controller's reconcile passes so far (the sum of `autolabel_reconciles_total` over its labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("autolabel_reconciles_total{")
    )


def metrics_answer(metrics_port: int) -> bool:
    """Whether the controller's metrics endpoint answers yet."""
    try:
        reconciles(metrics_port)
    except OSError:
        return False
    return True
