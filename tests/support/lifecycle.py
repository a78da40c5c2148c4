"""`with` support for the test and benchmark harnesses: start, and stop even when starting failed
half-way (so no process or greenlet outlives a failed start)."""

from __future__ import annotations

from typing import Any, Self


class StartStop:
    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
