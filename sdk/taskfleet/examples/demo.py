"""The demo workflow: a fan-out, a fan-in with dependencies, and a task on a second cluster.

SurveyWorkflow(region, scenes, gpu_cluster)
  |- FetchScene(region, i)      x scenes   (fan-out; each submits 2 MakeTile subtasks)
  |- DetectObjects(...)         on the GPU cluster, after every FetchScene completed (fan-in)
  `- PublishReport(...)         after DetectObjects completed
"""

from __future__ import annotations

import hashlib
import time

from taskfleet import ExecutionContext, Task

WORK_SECONDS = 0.05  # stands for real work, so that progress is visible


def _digest(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:10]


class SurveyWorkflow(Task):
    region: str
    scenes: int
    gpu_cluster: str

    def execute(self, context: ExecutionContext) -> None:
        fetches = context.submit_subtasks([FetchScene(self.region, i) for i in range(self.scenes)], max_retries=2)
        detect = context.submit_subtask(
            DetectObjects(self.region, self.scenes), depends_on=fetches, cluster=self.gpu_cluster
        )
        context.submit_subtask(PublishReport(self.region), depends_on=[detect])
        context.current_task.display = f"Survey {self.region} ({self.scenes} scenes)"


class FetchScene(Task):
    region: str
    scene: int

    def execute(self, context: ExecutionContext) -> None:
        time.sleep(WORK_SECONDS)
        context.submit_subtasks([MakeTile(self.region, self.scene, t) for t in range(2)])
        context.current_task.display = f"Fetch scene {self.scene} [{_digest(self.region, self.scene)}]"

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "demo.FetchScene", "v1.0"


class MakeTile(Task):
    region: str
    scene: int
    tile: int

    def execute(self, context: ExecutionContext) -> None:
        time.sleep(WORK_SECONDS)
        context.current_task.display = f"Tile {self.scene}.{self.tile}"


class DetectObjects(Task):
    region: str
    scenes: int

    def execute(self, context: ExecutionContext) -> None:
        time.sleep(WORK_SECONDS * 4)
        context.current_task.display = f"Detect objects in {self.scenes} scenes (GPU)"


class PublishReport(Task):
    region: str

    def execute(self, context: ExecutionContext) -> None:
        time.sleep(WORK_SECONDS)
        context.current_task.display = f"Report for {self.region} published"


CPU_TASKS = [SurveyWorkflow, FetchScene, MakeTile, PublishReport]
GPU_TASKS = [DetectObjects]
