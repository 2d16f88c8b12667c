"""A warm Airflow to fork ``airflow`` commands from: imports paid once per test process, not once per DAG run.

``airflow dags test`` spends most of its time before the DAG's first task: importing Airflow and its
CLI, the package (pandas, pyarrow), and the in-process Task Execution API's first call: about 10 s on
an idle 2-core machine, two minutes on a loaded one. This
process does all that once, then reads one request per line on stdin (JSON: argv, env, cwd and
output paths) and forks a child per request. The child is a fresh process as far as the test can
tell: it takes the request's environment (so its ``AIRFLOW_CONN_*`` connections and variables), runs
``airflow <argv>`` with its output in the given files, and exits with the command's code. Nothing a
child does reaches the next one. Airflow itself disposes the metadata engine's pool after a fork.

Replies, one JSON line each: ``{"pid": N}`` when the child started, ``{"returncode": N}`` when it ended.
Started and driven by ``tests.support.airflow_runner``; not for use on its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from typing import Any


def warm() -> None:
    """Import what every ``airflow dags test`` of the package's DAGs imports, and answer one execution API call.

    The first call to the Task Execution API builds its versioned routes lazily, for the process
    (about 5 s idle, a minute loaded); every task of every run then gets a new app, already cheap.
    The call runs on this thread's own event loop, so no thread is left to fork with.
    """
    import asyncio

    import httpx
    from airflow import configuration  # noqa: F401 (first, as airflow.__main__ does)
    from airflow.cli import cli_parser
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    import wecom.airflow_tasks
    import wecom.operators.extract  # noqa: F401

    cli_parser.get_parser()
    app = in_process_api_server().app

    async def first_call() -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://warm.invalid") as client:
            return (await client.get("/health")).status_code

    status = asyncio.run(first_call())
    if status != 200:
        raise RuntimeError(f"the in-process execution API answered {status} to GET /health")


def child(request: dict[str, Any]) -> None:
    """In the forked child: become the requested ``airflow`` command; never returns."""
    code = 1
    try:
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        sys.argv = ["airflow", *request["argv"]]
        from airflow.__main__ import main

        main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        _end_descendants()
        os._exit(code)


def _end_descendants() -> None:
    """End what the command left running: ``os._exit`` skips the interpreter's exit, where a fresh
    ``airflow`` process would shut down its process pools (the OpenLineage listener's, for DAG run
    events), so their workers would wait on their queues forever, orphaned."""
    import psutil

    left = psutil.Process().children(recursive=True)
    for process in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(left, timeout=10)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def main() -> None:
    # Replies go to the original stdout; anything else printed here (warnings, logs) goes to stderr.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def reply(message: dict[str, int]) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    warm()
    reply({"ready": os.getpid()})
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            replies.close()
            child(request)
        reply({"pid": pid})
        _, status = os.waitpid(pid, 0)
        reply({"returncode": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    main()
