"""The demo workflow: a fan-out, a fan-in with dependencies, a task on a second cluster, an optional task,
progress indicators and the job cache (on S3: the local stack's emulated bucket).

SurveyWorkflow(region, scenes, gpu_cluster)
  |- FetchScene(region, i)      x scenes   (fan-out; each caches its scene and submits 2 MakeTile subtasks)
  |- DetectObjects(...)         on the GPU cluster, after every FetchScene completed (fan-in; reads the cache)
  |- FetchWeather(region)       optional: the weather service is down, it fails (FAILED_OPTIONAL)
  `- PublishReport(...)         after DetectObjects and FetchWeather: it runs although the weather failed

Progress indicators: "scenes" (one per FetchScene) and "tiles" (one per MakeTile).
"""

from __future__ import annotations

import hashlib
import time

from taskfleet import ExecutionContext, Task

WORK_SECONDS = 0.05  # stands for real work, so that progress is visible
TILES_PER_SCENE = 2


def _digest(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:10]


class SurveyWorkflow(Task):
    region: str
    scenes: int
    gpu_cluster: str

    def execute(self, context: ExecutionContext) -> None:
        context.progress("scenes").add(self.scenes)
        context.progress("tiles").add(self.scenes * TILES_PER_SCENE)
        fetches = context.submit_subtasks([FetchScene(self.region, i) for i in range(self.scenes)], max_retries=2)
        detect = context.submit_subtask(
            DetectObjects(self.region, self.scenes), depends_on=fetches, cluster=self.gpu_cluster
        )
        weather = context.submit_subtask(FetchWeather(self.region), optional=True, max_retries=1)
        context.submit_subtask(PublishReport(self.region), depends_on=[detect, weather])
        context.current_task.display = f"Survey {self.region} ({self.scenes} scenes)"


class FetchScene(Task):
    region: str
    scene: int

    def execute(self, context: ExecutionContext) -> None:
        time.sleep(WORK_SECONDS)
        digest = _digest(self.region, self.scene)
        context.job_cache.group("scenes")[str(self.scene)] = digest.encode()  # for DetectObjects, on another cluster
        context.submit_subtasks([MakeTile(self.region, self.scene, t) for t in range(TILES_PER_SCENE)])
        context.progress("scenes").done(1)
        context.current_task.display = f"Fetch scene {self.scene} [{digest}]"

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "demo.FetchScene", "v1.0"


class MakeTile(Task):
    region: str
    scene: int
    tile: int

    def execute(self, context: ExecutionContext) -> None:
        time.sleep(WORK_SECONDS)
        context.progress("tiles").done(1)
        context.current_task.display = f"Tile {self.scene}.{self.tile}"


class DetectObjects(Task):
    region: str
    scenes: int

    def execute(self, context: ExecutionContext) -> None:
        time.sleep(WORK_SECONDS * 4)
        scenes = context.job_cache.group("scenes")
        missing = [i for i in range(self.scenes) if str(i) not in scenes]
        if missing:
            raise RuntimeError(f"scenes {missing} are not in the job cache")
        found = sum(int(scenes[str(i)].decode(), 16) % 7 for i in range(self.scenes))
        context.job_cache["objects"] = str(found).encode()
        context.current_task.display = f"Detected {found} objects in {self.scenes} cached scenes (GPU)"


class FetchWeather(Task):
    """Optional: nice to have in the report, and the (pretend) weather service is down."""

    region: str

    def execute(self, context: ExecutionContext) -> None:
        time.sleep(WORK_SECONDS)
        raise ConnectionError(f"weather service unavailable for {self.region}")


class PublishReport(Task):
    region: str

    def execute(self, context: ExecutionContext) -> None:
        time.sleep(WORK_SECONDS)
        objects = context.job_cache["objects"].decode()
        weather = "weather" in context.job_cache
        context.current_task.display = f"Report for {self.region} published: {objects} objects" + (
            "" if weather else ", without weather"
        )


CPU_TASKS = [SurveyWorkflow, FetchScene, MakeTile, FetchWeather, PublishReport]
GPU_TASKS = [DetectObjects]
