"""The consumer's memory does not grow with the recording: RecordingsFunction's handler runs in a process
of its own (tests.support.recordings_probe) against the local stack, and reports its peak resident memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.recordings_testkit import RecordingsLab
from tools.simulator.recordings_server import expected_sha256

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
REPO = Path(__file__).resolve().parents[3]
# How much more the 200 MiB copy may take than the 10 MiB one (a copy holds at most ~4 parts of 8 MiB).
ALLOWED_GROWTH_KIB = 40 * 1024


@pytest.fixture(scope="module")
def lab() -> Iterator[RecordingsLab]:
    with RecordingsLab() as running:
        yield running


def consume_in_a_child(lab: RecordingsLab, tmp_path: Path, label: str) -> dict[str, object]:
    """Run the deployed handler in a fresh process until the queue is empty; its report."""
    out = tmp_path / f"{label}.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.recordings_probe",
            "consume",
            "--queue-url",
            lab.queue_url,
            "--result-file",
            str(out),
        ],
        cwd=REPO,
        env=dict(os.environ),  # the stack's: the function's variables and the local endpoint
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()[-2000:]
    report: dict[str, object] = json.loads(out.read_text())
    return report


def test_a_200_mib_recording_takes_no_more_memory_than_a_10_mib_one(lab: RecordingsLab, tmp_path: Path) -> None:
    peaks = {}
    for size in (10 * MIB, 200 * MIB):
        call = f"memory-{size // MIB}mib-{time.monotonic_ns()}"
        lab.send(call, lab.server.url(call, size=size))

        report = consume_in_a_child(lab, tmp_path, call)

        assert report["batches"] == [{"received": 1, "failed": [], "error": None}]
        state = lab.recording(call)
        assert state["recording_status"] == "archived"
        assert state["recording_size"] == size
        expected = expected_sha256(call, size)
        assert state["recording_sha256"] == expected
        assert lab.object_sha256(state["recording_s3_key"]) == (expected, size)
        peaks[size] = int(str(report["peak_rss_kb"]))
        print(f"{size // MIB} MiB: peak RSS {peaks[size] / 1024:.1f} MiB, copy {float(str(report['seconds'])):.1f} s")

    growth = peaks[200 * MIB] - peaks[10 * MIB]
    assert growth < ALLOWED_GROWTH_KIB, f"peak RSS grew by {growth / 1024:.1f} MiB from 10 MiB to 200 MiB"
