"""Where a profiled run's CPU goes, per task and per kind of work, from a py-spy ``raw`` profile.

    py-spy record -r 200 -f raw -o run.raw --subprocesses -- python -m airflow dags test ...
    .venv/bin/python -m bench.profile_report run.raw [more.raw ...]

Each sample is put in one phase (Airflow's CLI start, DAG parsing, a task's own code, the task
runner around it) by the frames on its stack, and in one kind of work by what it is doing:
importing a module, waiting, or the package of the innermost frame (ours, pandas, Arrow, SQL,
HTTP, JSON, Airflow). py-spy leaves out threads it sees sleeping, but it counts a thread that is
runnable and waiting for a core (on a busy machine, one woken by a socket or a lock), and its idle
test misses some waits: samples whose innermost frame is a wait (a selector, a lock, a socket
read) are put under "waiting" rather than under the package waiting. The rest says where the
processor went; the run's log says where the clock went.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::\d+)?\)$")
# Task callables by the frame that runs them: the DAG files' functions, and our operator.
TASK_FILES = ("wecom_directory_sync.py", "wecom_callback_deltas.py")
OPERATOR_TASKS = {"WeComExtractOperator.execute": "extract"}
KINDS = (
    ("wecom/", "ours"),
    ("wecom_simulator/", "simulator"),
    ("pandas/", "pandas"),
    ("numpy/", "pandas"),
    ("pyarrow/", "Arrow/Parquet"),
    ("sqlalchemy/", "SQL"),
    ("sqlite3/", "SQL"),
    ("psycopg", "SQL"),
    ("requests/", "HTTP"),
    ("urllib3/", "HTTP"),
    ("http/", "HTTP"),
    ("socket.py", "HTTP"),
    ("ssl.py", "HTTP"),
    ("json/", "JSON"),
    ("orjson", "JSON"),
    ("Crypto/", "crypto"),
    ("airflow/", "Airflow"),
    ("structlog/", "Airflow"),
    ("pydantic", "Airflow"),
    ("fastapi/", "Airflow"),
    ("starlette/", "Airflow"),
    ("httpx/", "Airflow"),
    ("msgspec", "Airflow"),
)
# Innermost frames that wait for something (a socket, a lock, an event loop's selector).
WAITS = {
    "EpollSelector.select",
    "select",
    "Condition.wait",
    "Event.wait",
    "SocketIO.readinto",
    "poll_wait_for_socket.<locals>.do_poll",
}


def parse_line(line: str) -> tuple[list[tuple[str, str]], int] | None:
    """One collapsed stack: its frames (function, file), outermost first, and its sample count."""
    stack, _, count = line.rstrip("\n").rpartition(" ")
    if not count.isdigit():
        return None
    frames = []
    for part in stack.split(";")[1:]:  # the first part names the process
        match = FRAME.match(part)
        if match:
            frames.append((match["func"], match["file"]))
    return frames, int(count)


def phase_of(frames: list[tuple[str, str]]) -> str:
    """The task whose code is on the stack, else the part of Airflow running.

    A thread's stack does not show the task that started it: our worker threads (the extract's
    calls, the callback applier's fetches) are named as such, the rest are Airflow's own threads
    (``dags test`` serves the execution API in-process, and its supervisor relays the task's messages).
    """
    if frames and frames[0][0] == "Thread._bootstrap":
        if any(file.startswith("wecom/") for _, file in frames):
            return "our worker threads"
        return "Airflow threads (execution API, supervisor)"
    in_task_runner = False
    for func, file in frames:
        if file.endswith(TASK_FILES) and func != "<module>":
            return func
        if func in OPERATOR_TASKS:
            return OPERATOR_TASKS[func]
        if func in ("_run_task", "run_task_in_process"):
            in_task_runner = True
    if any(func == "<module>" and file.endswith(TASK_FILES) for func, file in frames):
        return "DAG file parse"
    if in_task_runner:
        return "task runner (start, XCom, state)"
    if any(func == "DAG.test" for func, _ in frames):
        return "dags test loop"
    return "CLI start"


def kind_of(frames: list[tuple[str, str]]) -> str:
    """Importing, waiting, or the package of the innermost frame we can name."""
    if any(func.startswith("_find_and_load") for func, _ in frames):
        return "imports"
    if frames and frames[-1][0] in WAITS:
        return "waiting"
    for _, file in reversed(frames):
        for marker, kind in KINDS:
            if marker in file:
                return kind
    return "other"


def report(paths: list[Path], rate: float) -> str:
    cells: dict[str, Counter[str]] = defaultdict(Counter)
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                parsed = parse_line(line)
                if parsed:
                    frames, count = parsed
                    cells[phase_of(frames)][kind_of(frames)] += count
    kinds = sorted({k for row in cells.values() for k in row}, key=lambda k: -sum(r[k] for r in cells.values()))
    total = sum(sum(row.values()) for row in cells.values())
    lines = [
        f"Seconds sampled by phase and kind of work ({total / rate / len(paths):.1f} s per profile, "
        f"{len(paths)} profile(s) averaged)",
        "",
        "| phase | s | " + " | ".join(kinds) + " |",
        "|---|---|" + "---|" * len(kinds),
    ]
    for phase, row in sorted(cells.items(), key=lambda item: -sum(item[1].values())):
        lines.append(
            f"| {phase} | {sum(row.values()) / rate / len(paths):.2f} | "
            + " | ".join(f"{row[k] / rate / len(paths):.2f}" if row[k] else "" for k in kinds)
            + " |"
        )
    lines.append(
        "| **all** | "
        + f"{total / rate / len(paths):.2f} | "
        + " | ".join(f"{sum(r[k] for r in cells.values()) / rate / len(paths):.2f}" for k in kinds)
        + " |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_report", description=__doc__.split("\n")[0])
    parser.add_argument("profiles", nargs="+", type=Path, help="py-spy record -f raw output files")
    parser.add_argument("--rate", type=float, default=200.0, help="the samples per second py-spy took (-r)")
    args = parser.parse_args()
    print(report(args.profiles, args.rate))


if __name__ == "__main__":
    main()
