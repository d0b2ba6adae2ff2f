"""The orchestrator: every state change of jobs, tasks and clusters (docs/architecture.md).

Handlers use the facade, `Orchestrator`; each module below does one job:

| module | what it does |
| --- | --- |
| `states` | task and job states, report outcomes, claim and report statuses, reason codes (StrEnums) |
| `contracts` | the orchestrator's inputs and outputs (TaskSpec, Report, Claim, their results) |
| `clusters` | cluster items, their DLQs and lanes (a queue per task identifier, created on first use) |
| `submit` | job submission (idempotent with a client token) |
| `siblings` | validating sibling tasks and turning them into rows (eager items or deferred specs) |
| `lease` | claims (only a runner of the task's own cluster, naming its job), lease tokens, take-over, extension |
| `report` | reports: computed (with subtasks), failed (retry or fail), released |
| `propagation` | latches, cascading completion, the dispatch window, `repair` |
| `dispatch` | tickets out to the lanes |
| `tree` | a job's task tree (walk from the roots; deferred subtasks from spec chunks) |
| `jobs` | job reads and job state transitions |
| `recovery` | job retry, resume, the sweeper (outbox, dead-letter queues, backlog per cluster) |
| `latches` | pure latch and dispatch-window arithmetic |

Storage is reached only through the table repository (`dal.repository.Table`, which alone knows keys
and condition text) and `dal.queues.Queues`; both are injected, so the same code runs on AWS, on the
local stack, and in tests against moto.
"""

from .contracts import Claim, ClaimResult, DeferredRef, Report, ReportResult, TaskSpec
from .facade import Orchestrator
from .states import ClaimStatus, JobState, Outcome, Reason, ReportStatus, TaskState

__all__ = [
    "Claim",
    "ClaimResult",
    "ClaimStatus",
    "DeferredRef",
    "JobState",
    "Orchestrator",
    "Outcome",
    "Reason",
    "Report",
    "ReportResult",
    "ReportStatus",
    "TaskSpec",
    "TaskState",
]
