"""Peak resident memory of some processes, and of their ffmpeg children, sampled while a block runs."""

from __future__ import annotations

import contextlib
import threading
import time

import psutil

from devstack.background import ffmpeg_children


class RssWatch:
    def __init__(self, processes: dict[str, psutil.Process]) -> None:
        self.processes = processes
        self.idle = {name: process.memory_info().rss for name, process in processes.items()}
        self.peak = dict(self.idle)
        self.ffmpeg_peak = 0
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while self._running:
            for name, process in self.processes.items():
                self.peak[name] = max(self.peak[name], process.memory_info().rss)
                for ffmpeg in ffmpeg_children(process):
                    with contextlib.suppress(psutil.NoSuchProcess):  # it finished since the listing
                        self.ffmpeg_peak = max(self.ffmpeg_peak, ffmpeg.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> RssWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._running = False
        self._thread.join()

    def idle_mb(self, name: str) -> float:
        return round(self.idle[name] / 2**20, 1)

    def growth_mb(self, name: str) -> float:
        return round((self.peak[name] - self.idle[name]) / 2**20, 1)
