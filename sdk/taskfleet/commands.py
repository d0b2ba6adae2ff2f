"""`taskfleet jobs ...`, `taskfleet clusters ...`, `taskfleet keys ...` and `taskfleet submit`: see and steer
jobs from a shell.

Output: tables, progress bars and task trees with rich when stdout is a terminal and rich is installed
(`pip install taskfleet[cli]`; `make setup` installs it); plain text when piped; `--json` for machines.
Every failure is one line on stderr and a non-zero exit status: 1 for an API answer or a bad argument,
and for `jobs watch`, the job's outcome (0 COMPLETED, 1 FAILED, 2 CANCELED).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from .client import Client, Cluster, Job, TaskInfo
from .errors import ApiUnavailableError, NotFoundError, TaskfleetError
from .protocol import TERMINAL_JOB_STATES, JobState

WATCH_EXIT = {JobState.COMPLETED: 0, JobState.FAILED: 1, JobState.CANCELED: 2}
STATE_STYLE = {
    "QUEUED": "white",
    "SUBMITTED": "white",
    "RUNNING": "cyan",
    "COMPUTED": "green",
    "COMPLETED": "green",
    "FAILED": "red",
    "CANCELED": "yellow",
    "FAILED_OPTIONAL": "dark_orange",
    "SKIPPED": "bright_black",
}
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class CommandError(Exception):
    """A bad argument, said in one line."""


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `jobs`, `submit`, `automations`, `console`, `clusters` and `keys` subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=None, help="API URL (default: TASKFLEET_URL)")
    common.add_argument("--json", action="store_true", help="print JSON (for scripts)")

    _add_jobs(sub, common)
    _add_submit(sub, common)
    _add_automations(sub, common)
    _add_console(sub, common)
    _add_clusters(sub, common)
    _add_keys(sub, common)


def _add_jobs(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    jobs = sub.add_parser("jobs", help="list, show, watch, cancel and retry jobs")
    jobs_sub = jobs.add_subparsers(dest="action", required=True)
    p = jobs_sub.add_parser("list", parents=[common], help="jobs, newest first")
    p.add_argument("--state", action="append", default=[], help="only jobs in this state (repeatable, or a,b)")
    p.add_argument("--name", default=None, help="only jobs whose name contains this (in any case)")
    p.add_argument("--since", default=None, help="submitted since: an ISO time or an age like 30m, 2h, 7d")
    p.add_argument("--limit", type=int, default=50, help="at most this many jobs (default 50)")
    p.set_defaults(func=jobs_list)
    for action, func, what in (
        ("show", jobs_show, "a job: its state, stats, progress and task tree"),
        ("watch", jobs_watch, "a job, live until it ends (exit 0 completed, 1 failed, 2 canceled)"),
        ("tasks", jobs_tasks, "a job's tasks"),
        ("cancel", jobs_cancel, "cancel a job"),
        ("retry", jobs_retry, "retry a failed or canceled job"),
        ("visualize", jobs_visualize, "a job's diagram as SVG"),
    ):
        p = jobs_sub.add_parser(action, parents=[common], help=what)
        p.add_argument("job", help="the job's id")
        p.set_defaults(func=func)
        if action == "watch":
            p.add_argument("--interval", type=float, default=1.0, help="seconds between looks (default 1)")
        if action == "visualize":
            p.add_argument("--direction", choices=("down", "right"), default="down")
            p.add_argument("-o", "--output", default=None, help="write the SVG to this file (default: stdout)")


def _add_submit(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    submit = sub.add_parser("submit", parents=[common], help="submit a job of one task")
    submit.add_argument("task", help="the task class as module:ClassName (imported from the working directory)")
    submit.add_argument("--input", default=None, help="the task's input as JSON (an object of its fields)")
    submit.add_argument("--name", default=None, help="the job's name (default: the task's name)")
    submit.add_argument("--cluster", default=None, help="the cluster's slug (default: default)")
    submit.add_argument("--max-retries", type=int, default=0, help="retries of each task (default 0)")
    submit.set_defaults(func=submit_job)


def _add_automations(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    automations = sub.add_parser("automations", help="list, create and delete automations (cron, storage events)")
    automations_sub = automations.add_subparsers(dest="action", required=True)
    p = automations_sub.add_parser("list", parents=[common], help="every automation")
    p.set_defaults(func=automations_list)
    p = automations_sub.add_parser("create-cron", parents=[common], help="a cron automation of a CronTask")
    p.add_argument("name")
    p.add_argument("task", help="the CronTask class as module:ClassName (imported from the working directory)")
    p.add_argument("--schedule", action="append", required=True, help="a 5-field cron schedule (repeatable)")
    p.add_argument("--input", default=None, help="the task's arguments as JSON")
    p.add_argument("--cluster", default=None)
    p.add_argument("--max-retries", type=int, default=0)
    p.set_defaults(func=automations_create_cron)
    p = automations_sub.add_parser("delete", parents=[common], help="delete an automation")
    p.add_argument("automation")
    p.add_argument("--cancel-jobs", action="store_true", help="also cancel its jobs still submitted or running")
    p.set_defaults(func=automations_delete)


def _add_console(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    console = sub.add_parser("console", parents=[common], help="a web console for jobs and clusters, on loopback")
    console.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0: any free one)")
    console.add_argument("--open", action="store_true", help="open it in the default web browser")
    console.set_defaults(func=run_console)


def _add_clusters(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    clusters = sub.add_parser("clusters", help="list, create, update and delete clusters")
    clusters_sub = clusters.add_subparsers(dest="action", required=True)
    clusters_sub.add_parser("list", parents=[common], help="every cluster").set_defaults(func=clusters_list)
    p = clusters_sub.add_parser("create", parents=[common], help="create a cluster")
    p.add_argument("name")
    p.add_argument("--description", default=None)
    p.add_argument("--slug", default=None, help="its slug (default: made from the name)")
    p.set_defaults(func=clusters_create)
    p = clusters_sub.add_parser("update", parents=[common], help="change a cluster's name or description")
    p.add_argument("slug")
    p.add_argument("--name", default=None)
    p.add_argument("--description", default=None)
    p.set_defaults(func=clusters_update)
    p = clusters_sub.add_parser("delete", parents=[common], help="delete a cluster")
    p.add_argument("slug")
    p.add_argument("--force", action="store_true", help="also when tickets wait in it (they are dropped)")
    p.set_defaults(func=clusters_delete)


def _add_keys(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    keys = sub.add_parser("keys", help="create, list and revoke bearer API keys (admin)")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    p = keys_sub.add_parser("create", parents=[common], help="create a key; its token is printed once")
    # not `choices`: argparse would exit 2 with its usage; the API's refusal is one line (exit 1)
    p.add_argument("--role", required=True, metavar="{reader,submitter,admin,runner,full}", help="what the key may do")
    p.add_argument("--cluster", default=None, metavar="SLUG", help="the one cluster a runner key reaches")
    p.add_argument("--lease", type=int, default=None, metavar="SECONDS", help="a runner or full key's lease (1-43200)")
    p.add_argument("--description", default=None, metavar="TEXT", help="what the key is for (at most 200)")
    p.set_defaults(func=keys_create)
    keys_sub.add_parser("list", parents=[common], help="every key, without secrets").set_defaults(func=keys_list)
    p = keys_sub.add_parser("revoke", parents=[common], help="revoke a key for good")
    p.add_argument("key_id", metavar="KEY_ID")
    p.set_defaults(func=keys_revoke)


def run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; an error is one line on stderr (exit status 1)."""
    prog = f"taskfleet {args.command}" + (f" {args.action}" if getattr(args, "action", None) else "")
    try:
        return func(args)
    except NotFoundError as err:
        print(f"{prog}: {err.message}", file=sys.stderr)
    except ApiUnavailableError as err:
        print(f"{prog}: cannot reach the API: {err}", file=sys.stderr)
    except TaskfleetError as err:
        print(f"{prog}: {getattr(err, 'message', None) or err}", file=sys.stderr)
    except CommandError as err:
        print(f"{prog}: {err}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1


# --- output ---------------------------------------------------------------------------------------------


def _rich() -> Any:
    """rich's Console when stdout is a terminal and rich is installed, else None (plain text)."""
    if not sys.stdout.isatty() or os.environ.get("TASKFLEET_PLAIN"):
        return None
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console()


def _jsonable(value: Any) -> Any:  # noqa: PLR0911 - one return per kind of value, a flat dispatch
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {str(_jsonable(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    print(json.dumps(_jsonable(value), indent=2))


def _styled(state: str) -> str:
    return f"[{STATE_STYLE.get(str(state), 'white')}]{state}[/]"


def _short_time(text: str | None) -> str:
    return (text or "")[:19].replace("T", " ")


def _progress_text(job: Job) -> str:
    return ", ".join(f"{p.label or 'progress'} {p.done}/{p.total}" for p in job.progress)


def _failure_line(task: TaskInfo) -> str:
    message = str((task.failure or {}).get("message") or "")
    return message.splitlines()[0][:120] if message else ""


def _table(console: Any, title: str | None, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    if console is None:
        print("\t".join(headers))
        for row in rows:
            print("\t".join(str(c).replace("\t", " ").replace("\n", " ") for c in row))
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, header_style="bold")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*[c if header == "state" else escape(str(c)) for header, c in zip(headers, row, strict=True)])
    console.print(table)


def _client(args: argparse.Namespace) -> Client:
    if not (args.url or os.environ.get("TASKFLEET_URL")):
        raise CommandError("no API URL: pass --url or set TASKFLEET_URL (`taskfleet dev` prints it)")
    return Client(args.url)


# --- jobs -----------------------------------------------------------------------------------------------


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (naive: UTC) or an age: `30m`, `2h`, `7d`."""
    now = now or datetime.now(UTC)
    if match := _RELATIVE.match(text.strip()):
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"--since {text!r}: not an ISO time (2026-12-01T08:00) nor an age (30m, 2h, 7d)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def jobs_list(args: argparse.Namespace) -> int:
    states = [s.strip().upper() for value in args.state for s in value.split(",") if s.strip()]
    unknown = [s for s in states if s not in JobState.__members__]
    if unknown:
        raise CommandError(f"--state {unknown[0]}: not one of {', '.join(sorted(JobState.__members__))}")
    if args.limit < 1:
        raise CommandError("--limit must be at least 1")
    client = _client(args)
    since = parse_since(args.since) if args.since else None
    jobs = client.jobs().query(
        temporal_extent=(since, datetime.now(UTC) + timedelta(days=1)) if since else None,
        job_states=states or None,
        name=args.name,
        limit=args.limit,
    )
    if args.json:
        print_json(jobs)
        return 0
    console = _rich()
    rows = [
        [
            j.id,
            j.name,
            _styled(j.state) if console else str(j.state),
            _short_time(j.submitted_at),
            str(j.execution_stats.total_tasks),
            _progress_text(j),
        ]
        for j in jobs
    ]
    _table(console, "jobs", ["id", "name", "state", "submitted (UTC)", "tasks", "progress"], rows)
    if not jobs:
        print("no jobs match", file=sys.stderr)
    return 0


def _find(client: Client, job_id: str) -> Job:
    return client.jobs().find(job_id)


def _tree(tasks: Sequence[TaskInfo]) -> dict[str | None, list[TaskInfo]]:
    children: dict[str | None, list[TaskInfo]] = {}
    for task in tasks:
        children.setdefault(task.parent_id, []).append(task)
    return children


def _plain_show(job: Job, tasks: Sequence[TaskInfo]) -> str:
    stats = job.execution_stats
    lines = [
        f"job {job.id} {job.name!r}: {job.state}",
        f"  submitted {_short_time(job.submitted_at)}  cluster {job.cluster}",
        f"  tasks {stats.total_tasks}: " + ", ".join(f"{s} {n}" for s, n in stats.tasks_by_state.items()),
        f"  compute {stats.compute_time.total_seconds():.2f} s, elapsed {stats.elapsed_time.total_seconds():.2f} s,"
        f" parallelism {stats.parallelism:.2f}",
    ]
    lines += [f"  {p.label or 'progress'}: {p.done}/{p.total}" for p in job.progress]
    if job.failure:
        lines.append(f"  failure: {job.failure.get('name')}: {job.failure.get('message')}")
    children = _tree(tasks)

    def walk(parent: str | None, depth: int) -> None:
        for task in children.get(parent, []):
            failure = _failure_line(task)
            lines.append(f"  {'  ' * depth}- {task.display} [{task.state}]" + (f": {failure}" if failure else ""))
            walk(task.id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)


def _rich_show(job: Job, tasks: Sequence[TaskInfo]) -> Any:
    from rich.console import Group
    from rich.markup import escape
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.tree import Tree

    stats = job.execution_stats
    head = Table.grid(padding=(0, 2))
    head.add_row("job", f"[bold]{escape(job.name)}[/] {job.id}")
    head.add_row("state", _styled(job.state))
    head.add_row("submitted", _short_time(job.submitted_at) + " UTC")
    head.add_row(
        "tasks", f"{stats.total_tasks}: " + ", ".join(f"{_styled(s)} {n}" for s, n in stats.tasks_by_state.items())
    )
    head.add_row(
        "compute",
        f"{stats.compute_time.total_seconds():.2f} s over {stats.elapsed_time.total_seconds():.2f} s,"
        f" parallelism {stats.parallelism:.2f}",
    )
    if job.failure:
        head.add_row("failure", f"[red]{escape(str(job.failure.get('message')))}[/]")
    bars = Table.grid(padding=(0, 2))
    for p in job.progress:
        bars.add_row(
            escape(p.label or "progress"),
            ProgressBar(total=max(p.total, 1), completed=p.done, width=40),
            f"{p.done}/{p.total}",
        )
    tree = Tree(f"[bold]{escape(job.name)}[/]")
    children = _tree(tasks)

    def walk(node: Any, parent: str | None) -> None:
        for task in children.get(parent, []):
            failure = _failure_line(task)
            label = f"{escape(task.display)} {_styled(task.state)}" + (f" [red]{escape(failure)}[/]" if failure else "")
            walk(node.add(label), task.id)

    walk(tree, None)
    return Group(head, bars, tree)


def jobs_show(args: argparse.Namespace) -> int:
    client = _client(args)
    job = _find(client, args.job)
    tasks = client.jobs().tasks(job)
    if args.json:
        print_json({"job": job, "tasks": tasks})
        return 0
    console = _rich()
    if console is None:
        print(_plain_show(job, tasks))
    else:
        console.print(_rich_show(job, tasks))
    return 0


def jobs_watch(args: argparse.Namespace) -> int:
    client = _client(args)
    job = _find(client, args.job)
    console = None if args.json else _rich()
    if console is not None:
        from rich.live import Live

        with Live(_rich_show(job, client.jobs().tasks(job)), console=console, refresh_per_second=4) as live:
            while job.state not in TERMINAL_JOB_STATES:
                time.sleep(args.interval)
                job = _find(client, args.job)
                live.update(_rich_show(job, client.jobs().tasks(job)))
    else:
        last = ""
        while True:
            line = json.dumps(_jsonable(job)) if args.json else f"{job.state} " + _progress_text(job)
            if line != last:
                print(line, flush=True)
                last = line
            if job.state in TERMINAL_JOB_STATES:
                break
            time.sleep(args.interval)
            job = _find(client, args.job)
    return WATCH_EXIT.get(JobState(job.state), 1)


def jobs_tasks(args: argparse.Namespace) -> int:
    client = _client(args)
    tasks = client.jobs().tasks(args.job)
    if args.json:
        print_json(tasks)
        return 0
    console = _rich()
    rows = [
        [
            t.id,
            t.display,
            f"{t.name} {t.version}",
            _styled(t.state) if console else str(t.state),
            str(t.attempt),
            t.cluster,
            _failure_line(t),
        ]
        for t in tasks
    ]
    _table(
        console, f"tasks of job {args.job}", ["id", "display", "task", "state", "attempt", "cluster", "failure"], rows
    )
    return 0


def jobs_cancel(args: argparse.Namespace) -> int:
    job = _client(args).jobs().cancel(args.job)
    if args.json:
        print_json(job)
    else:
        print(f"job {job.id} {job.state}")
    return 0


def jobs_retry(args: argparse.Namespace) -> int:
    rescheduled = _client(args).jobs().retry(args.job)
    if args.json:
        print_json({"job": args.job, "rescheduled": rescheduled})
    else:
        print(f"job {args.job} retried: {rescheduled} task(s) rescheduled")
    return 0


def jobs_visualize(args: argparse.Namespace) -> int:
    svg = _client(args).jobs().visualize(args.job, direction=args.direction)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(svg)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(svg)
    return 0


def _task_from_args(spec: str, text: str | None) -> Any:
    """An instance of the task class `spec` (module:ClassName) with the arguments given as JSON."""
    from .cli import load_task
    from .task import _deserialize_args

    cls = load_task(spec)
    try:
        payload = json.loads(text) if text is not None else None
    except json.JSONDecodeError as err:
        raise CommandError(f"--input is not valid JSON: {err}") from None
    try:
        return _deserialize_args(cls, payload)
    except (TypeError, KeyError, ValueError) as err:
        raise CommandError(f"--input does not fit {cls.__name__}: {err}") from None


def submit_job(args: argparse.Namespace) -> int:
    task = _task_from_args(args.task, args.input)
    cls = type(task)
    client = _client(args)
    job = client.jobs().submit(
        args.name or cls.identifier()[0], task, cluster=args.cluster, max_retries=args.max_retries
    )
    if args.json:
        print_json(job)
    else:
        print(f"submitted job {job.id} ({job.name}); follow it with: taskfleet jobs watch {job.id}")
    return 0


def run_console(args: argparse.Namespace) -> int:
    from .console import serve

    server = serve(_client(args), args.port)
    print(f"taskfleet console: {server.url}  (on loopback only; Ctrl-C stops it)", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


# --- automations ----------------------------------------------------------------------------------------


def automations_list(args: argparse.Namespace) -> int:
    automations = _client(args).automations().all()
    if args.json:
        print_json(automations)
        return 0
    rows = [
        [
            a.id,
            a.name,
            a.kind,
            f"{a.task[0]} {a.task[1]}",
            "; ".join(a.cron_schedules) or "; ".join(f"s3://{b}/{g}" for b, g in a.storage_triggers),
            a.cluster,
        ]
        for a in automations
    ]
    _table(_rich(), "automations", ["id", "name", "kind", "task", "triggers", "cluster"], rows)
    return 0


def automations_create_cron(args: argparse.Namespace) -> int:
    task = _task_from_args(args.task, args.input)
    automation = (
        _client(args)
        .automations()
        .create_cron_automation(args.name, task, args.schedule, cluster=args.cluster, max_retries=args.max_retries)
    )
    if args.json:
        print_json(automation)
    else:
        print(f"created automation {automation.id} ({automation.name}): {'; '.join(automation.cron_schedules)}")
    return 0


def automations_delete(args: argparse.Namespace) -> int:
    canceled = _client(args).automations().delete(args.automation, cancel_jobs=args.cancel_jobs)
    if args.json:
        print_json({"deleted": args.automation, "canceled_jobs": canceled})
    else:
        print(f"deleted automation {args.automation}" + (f"; {canceled} job(s) canceled" if args.cancel_jobs else ""))
    return 0


# --- clusters -------------------------------------------------------------------------------------------


def _print_cluster(args: argparse.Namespace, cluster: Cluster, verb: str) -> None:
    if args.json:
        print_json(cluster)
    else:
        print(f"{verb} cluster {cluster.slug} ({cluster.display_name})")


def clusters_list(args: argparse.Namespace) -> int:
    client = _client(args)
    clusters = client.clusters().all()
    backlogs = {c.slug: client.clusters().backlog(c)["backlog"] for c in clusters}
    if args.json:
        print_json([{**_jsonable(c), "backlog": backlogs[c.slug]} for c in clusters])
        return 0
    rows = [
        [c.slug, c.display_name, c.description or "", "yes" if c.deletable else "no", str(backlogs[c.slug])]
        for c in clusters
    ]
    _table(_rich(), "clusters", ["slug", "name", "description", "deletable", "backlog"], rows)
    return 0


def clusters_create(args: argparse.Namespace) -> int:
    cluster = _client(args).clusters().create(args.name, description=args.description, slug=args.slug)
    _print_cluster(args, cluster, "created")
    return 0


def clusters_update(args: argparse.Namespace) -> int:
    if args.name is None and args.description is None:
        raise CommandError("say what to change: --name and/or --description")
    cluster = _client(args).clusters().update(args.slug, name=args.name, description=args.description)
    _print_cluster(args, cluster, "updated")
    return 0


def clusters_delete(args: argparse.Namespace) -> int:
    _client(args).clusters().delete(args.slug, force=args.force)
    if args.json:
        print_json({"deleted": args.slug})
    else:
        print(f"deleted cluster {args.slug}")
    return 0


# --- keys -----------------------------------------------------------------------------------------------


def _key_reach(key: dict[str, Any]) -> str:
    """Where a runner or full key reaches, and with which lease; nothing for the other roles."""
    lease = key.get("lease_seconds")
    if key.get("cluster"):
        reach = f"cluster {key['cluster']}"
    elif key.get("role") == "full":
        reach = "every cluster"
    else:
        return ""
    return reach + (f", lease {lease} s" if lease else "")


def keys_create(args: argparse.Namespace) -> int:
    key = (
        _client(args)
        .keys()
        .create(args.role, cluster=args.cluster, lease_seconds=args.lease, description=args.description)
    )
    if args.json:
        print_json(key)
        return 0
    reach = _key_reach(key)
    print(f"created {key['role']} key {key['key_id']}" + (f" ({reach})" if reach else ""))
    print(key["token"])
    print("This token is shown only now: store it as a secret; taskfleet keeps only its hash.")
    return 0


def keys_list(args: argparse.Namespace) -> int:
    keys = _client(args).keys().all()
    if args.json:
        print_json(keys)
        return 0
    rows = [
        [
            k["key_id"],
            k["role"],
            k.get("cluster") or ("(every)" if k["role"] == "full" else ""),
            str(k.get("lease_seconds") or ""),
            k.get("description") or "",
            _short_time(k.get("created_at")),
            _short_time(k.get("revoked_at")),
        ]
        for k in keys
    ]
    _table(_rich(), "API keys", ["key id", "role", "cluster", "lease", "description", "created (UTC)", "revoked"], rows)
    return 0


def keys_revoke(args: argparse.Namespace) -> int:
    key = _client(args).keys().revoke(args.key_id)
    if args.json:
        print_json(key)
    else:
        print(f"revoked {key['role']} key {key['key_id']} at {_short_time(key.get('revoked_at'))} UTC")
    return 0
