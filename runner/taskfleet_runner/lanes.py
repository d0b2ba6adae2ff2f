"""The lanes a runner polls: its cluster's queues of the task identifiers it can run.

One receive is in flight per lane at most, each on a thread of a small pool, so a ticket in any lane is
taken within one receive, and an idle runner makes one long poll per lane every 20 s (3 a minute). A long
poll cannot be cancelled: SQS may deliver to a receive whose caller has gone, and that ticket then stays
invisible for the visibility timeout. So the runner never abandons one: `drain` waits for every receive in
flight and returns what they got, for the runner to hand back (docs/architecture.md, "Runner loop").
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("taskfleet.runner")

SLICE_SECONDS = 0.25  # how often a waiting runner looks at its stop flag
ROUND_TRIP_MARGIN = 10.0  # beyond a receive's own wait: its HTTP round trip with botocore's retries
MAX_LANES = 256  # receives in flight at once (a runner registers at most 200 identifiers)


@dataclass(frozen=True)
class Receipt:
    """A received ticket's handle in its lane (delete it, or change its visibility)."""

    lane: str
    handle: str


class Lanes:
    def __init__(self, sqs: Any, urls: list[str]) -> None:
        self.sqs = sqs
        self.urls = list(urls)
        # threads are started as receives need them: one per lane polled at once
        self._pool = ThreadPoolExecutor(max_workers=MAX_LANES, thread_name_prefix="lane")
        self._inflight: dict[str, Future[list[dict[str, Any]]]] = {}
        self.errors = 0  # receives in a row that failed (after botocore's own retries)

    def update(self, urls: list[str]) -> None:
        """Lanes found since (an older minor version submitted for the first time): polled from now on."""
        for url in urls:
            if url not in self.urls:
                self.urls.append(url)

    def receive(self, wait: int, max_messages: int, stopping: Any, *, announce: bool = False) -> list[dict[str, Any]]:
        """Messages from any lane, each with its `Receipt` under "receipt": starts a receive on every lane that
        has none in flight and returns as soon as some lane delivered. With `wait` 0 it returns once the
        receives it started came back (lanes still in a long poll are not asked twice); with a long poll it
        returns after `wait` (plus the round trip) with nothing, or when `stopping` is set. `announce` logs
        that the runner is idle, once the receives are under way."""
        if not self.urls:  # nothing to poll (no lane answered yet): wait as a poll would, never spin
            stopping.wait(max(wait, SLICE_SECONDS))
            return []
        started = [self._start(url, wait, max_messages) for url in self.urls if url not in self._inflight]
        if announce:
            log.info("idle: waiting for tickets on %s lane(s)", len(self.urls))
        deadline = time.monotonic() + wait + ROUND_TRIP_MARGIN
        while True:
            got = self._harvest()
            if got or not self._inflight:
                return got
            if wait == 0 and all(f.done() for f in started):
                return self._harvest()
            if stopping.is_set() or time.monotonic() >= deadline:
                return []
            watched = started if wait == 0 else list(self._inflight.values())
            wait_for(watched, timeout=SLICE_SECONDS, return_when=FIRST_COMPLETED)

    def drain(self, timeout: float) -> list[dict[str, Any]]:
        """Wait for every receive in flight (at most `timeout`) and return what they got."""
        if self._inflight:
            log.info("waiting for %s open receive(s) to return, so that no ticket stays in flight", len(self._inflight))
            wait_for(list(self._inflight.values()), timeout=timeout)
        return self._harvest()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def backlog_visible(self) -> int:
        """Tickets visible or delayed over all lanes (SQS's approximate counts), for run_all's last look."""
        total = 0
        for url in self.urls:
            try:
                attributes = self.sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"]
                )["Attributes"]
            except Exception as err:  # cannot tell: say nothing is left rather than loop on an error
                log.debug("queue attributes of %s unavailable: %s", url, err)
                continue
            total += sum(int(v) for v in attributes.values())
        return total

    def _start(self, url: str, wait: int, max_messages: int) -> Future[list[dict[str, Any]]]:
        future = self._pool.submit(self._receive_one, url, wait, max_messages)
        self._inflight[url] = future
        return future

    def _receive_one(self, url: str, wait: int, max_messages: int) -> list[dict[str, Any]]:
        resp = self.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=max(1, min(10, max_messages)),
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        messages = list(resp.get("Messages", []))
        for message in messages:
            message["receipt"] = Receipt(url, message["ReceiptHandle"])
        return messages

    def harvest(self) -> list[dict[str, Any]]:
        """What receives that have returned since delivered (without waiting for any)."""
        return self._harvest()

    def _harvest(self) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        for url, future in list(self._inflight.items()):
            if not future.done():
                continue
            del self._inflight[url]
            try:
                got.extend(future.result())
                self.errors = 0
            except Exception as err:  # SQS unavailable or throttling beyond botocore's retries
                self.errors += 1
                log.warning("receiving from a lane failed (%s in a row): %s", self.errors, err)
        return got
