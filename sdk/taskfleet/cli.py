"""The `taskfleet` command: `runner` (a task runner), `jobs`, `clusters` and `submit` (commands.py); with
the local stack installed (taskfleet-functions), also `dev` (the local stack) and `demo` (the example, end
to end)."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
import os
import sys

from .task import Task


def load_task(spec: str) -> type[Task]:
    """`package.module:ClassName` -> the class. Like `python -m` and Celery, modules in the working
    directory import without PYTHONPATH."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise SystemExit(f"task {spec!r} must look like package.module:ClassName")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise SystemExit(f"cannot load task {spec!r}: {err}") from None
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise SystemExit(f"{spec!r} is not a taskfleet Task subclass")
    return cls


def cmd_runner(args: argparse.Namespace) -> int:
    from .client import Client
    from .errors import ApiError, ApiUnavailableError, ConfigurationError, DuplicateTaskError, NotFoundError

    specs = args.tasks or os.environ.get("TASKFLEET_TASKS", "").split()
    if not specs:
        raise SystemExit("name at least one task class (module:ClassName) or set TASKFLEET_TASKS")
    tasks = [load_task(s) for s in specs]
    cluster = args.cluster or os.environ.get("TASKFLEET_CLUSTER") or "default"
    if not (args.url or os.environ.get("TASKFLEET_URL")):
        raise SystemExit("taskfleet runner: no API URL: pass --url or set TASKFLEET_URL")
    # The deployment's cache bucket (the stack passes it to ECS runners): tasks get `context.job_cache`.
    cache = None
    if bucket := os.environ.get("TASKFLEET_CACHE_BUCKET"):
        from .cache import AmazonS3Cache

        cache = AmazonS3Cache(bucket)
    try:
        client = Client(args.url)
        runner = client.runner(cluster, tasks, shutdown_grace=args.grace, cache=cache)
        if args.until_idle:
            runner.run_all()
        else:
            runner.run_forever()
    except NotFoundError as err:
        raise SystemExit(f"taskfleet runner: {err.message} (create it with client.clusters().create)") from None
    except ApiUnavailableError as err:
        raise SystemExit(f"taskfleet runner: cannot reach {client.transport.base_url}: {err}") from None
    except (ConfigurationError, ApiError, DuplicateTaskError) as err:
        raise SystemExit(f"taskfleet runner: {err}") from None
    return 0


COMMANDS_GROUP = "taskfleet.commands"
# Subcommands another distribution adds (entry points of COMMANDS_GROUP), and what to do without it.
LOCAL_COMMANDS = {
    "dev": "run the local stack (moto + handlers) on loopback",
    "demo": "run the example workflow on the local stack, end to end",
}
LOCAL_MISSING = (
    "taskfleet {command}: the local stack (the taskfleet-functions distribution with its `local` "
    "extra) is not installed; run `make setup` in a clone of the taskfleet repository"
)


def command_plugins() -> dict[str, importlib.metadata.EntryPoint]:
    """Subcommands that installed distributions add: entry points `name = module:add`, where `add(subparsers)`
    adds the parser `name` and sets its `func`. Discovered from metadata; nothing is imported here."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=COMMANDS_GROUP)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="taskfleet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    runner = sub.add_parser("runner", help="start a task runner")
    runner.add_argument("tasks", nargs="*", help="task classes as module:ClassName (or TASKFLEET_TASKS)")
    runner.add_argument("--url", default=None, help="API URL (default: TASKFLEET_URL)")
    runner.add_argument("--cluster", default=None, help="cluster slug (default: TASKFLEET_CLUSTER or 'default')")
    runner.add_argument("--until-idle", action="store_true", help="exit when no runnable task is left")
    runner.add_argument(
        "--grace",
        type=float,
        default=float(os.environ.get("TASKFLEET_SHUTDOWN_GRACE", "20")),
        help="seconds a running task may finish after SIGTERM before it is given back",
    )
    runner.set_defaults(func=cmd_runner)
    from .commands import add_commands

    add_commands(sub)

    command = next((a for a in argv if not a.startswith("-")), None)
    if command != "runner":  # a runner imports no other distribution's code
        plugins = command_plugins()
        if command in LOCAL_COMMANDS and command not in plugins:
            print(LOCAL_MISSING.format(command=command), file=sys.stderr)
            return 2
        others = sorted(n for n in plugins if n not in LOCAL_COMMANDS and n != "runner")
        for name in [*LOCAL_COMMANDS, *others]:
            if name in plugins:
                plugins[name].load()(sub)
            else:  # dev or demo: listed by --help, with how to get it
                sub.add_parser(name, help=f"{LOCAL_COMMANDS[name]} (not installed: run `make setup` in the repository)")

    args = parser.parse_args(argv)
    # taskfleet's own lines at INFO by default (a runner says when it starts and what each task did, never
    # an input); other libraries' at WARNING. TASKFLEET_LOG_LEVEL sets both.
    level = os.environ.get("TASKFLEET_LOG_LEVEL", "").upper()
    logging.basicConfig(level=level or "WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("taskfleet").setLevel(level or "INFO")
    if args.command in ("jobs", "clusters", "keys", "submit", "console", "automations"):
        from .commands import run

        return run(args.func, args)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
