"""Where rendering runs, off the event loop: a pool of worker processes (default) or of threads.

Slot ``i`` of the limiter runs on worker ``i``. A process worker talks over a pipe: the task goes in,
progress and the result come back, and a ``cancel`` message makes the writer stop at its next chunk (the
worker is killed and replaced if it has not stopped within a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from .files import remove_partials
from .render import RenderFailed, RenderResult, RenderTask, StreamTask, open_csv_stream, render
from .types import ExportCancelled

CANCEL_GRACE_S = 1.0
Progress = Callable[[int], None]


Chunks = AsyncGenerator[tuple[int, bytes], None]


class WorkerPool(Protocol):
    async def run(self, slot: int, task: RenderTask, on_progress: Progress) -> RenderResult: ...
    async def stream(self, slot: int, task: StreamTask) -> Chunks: ...
    def pids(self) -> list[int]: ...
    def start(self) -> None: ...
    async def close(self) -> None: ...


# -- process workers ------------------------------------------------------------------------------------


class PipeControl:
    """A writer's control inside a worker process: progress goes up the pipe, ``cancel`` comes down it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def progress(self, records: int) -> None:
        if self.conn.poll() and self.conn.recv() == "cancel":
            raise ExportCancelled("cancelled")
        self.conn.send(("progress", records))


def worker_main(conn: Connection) -> None:
    """A worker process: render tasks one after the other until told to stop."""
    while True:
        try:
            task = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if task is None:
            return
        if task == "cancel":  # a cancel that arrived after its task finished
            continue
        if isinstance(task, StreamTask):
            _stream(conn, task)
            continue
        try:
            conn.send(("done", render(task, PipeControl(conn))))
        except ExportCancelled:
            conn.send(("cancelled", None))
        except RenderFailed as exc:
            conn.send(("failed", (exc.reason, exc.message, exc.written)))
        except BaseException as exc:  # noqa: BLE001 - report, then keep serving
            conn.send(("failed", ("render_error", f"{type(exc).__name__}: {exc}", 0)))


def _stream(conn: Connection, task: StreamTask) -> None:
    """Send a stream's chunks up the pipe: ``started`` (or ``failed``), ``chunk``s, then ``done``. Sending
    blocks while the server has not taken the last chunk, which holds the source back to the client's pace."""
    try:
        chunks = open_csv_stream(task)
    except RenderFailed as exc:
        conn.send(("failed", (exc.reason, exc.message, 0)))
        return
    except Exception as exc:  # noqa: BLE001 - the source's own failure, reported to the client
        conn.send(("failed", ("source_error", f"{type(exc).__name__}: {exc}", 0)))
        return
    conn.send(("started", None))
    try:
        for chunk in chunks:
            if conn.poll() and conn.recv() == "cancel":
                conn.send(("cancelled", None))
                return
            conn.send(("chunk", chunk))
    except Exception as exc:  # noqa: BLE001
        conn.send(("failed", ("source_error", f"{type(exc).__name__}: {exc}", 0)))
        return
    conn.send(("done", None))


async def _message(conn: Connection) -> Any:
    """The worker's next message, read once the pipe is readable (cancelling reads nothing)."""
    loop = asyncio.get_running_loop()
    fd = conn.fileno()
    arrived: asyncio.Future[Any] = loop.create_future()

    def readable() -> None:
        loop.remove_reader(fd)
        try:
            arrived.set_result(conn.recv())
        except (EOFError, OSError):
            arrived.set_exception(RenderFailed("worker_crashed", "the export worker process died"))

    loop.add_reader(fd, readable)
    try:
        return await arrived
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(fd)


@dataclass
class _Worker:
    process: Any
    conn: Connection


class ProcessWorkers:
    """One process per slot, started up front so the first exports do not pay for it."""

    def __init__(self, count: int) -> None:
        # forkserver: no fork of a threaded server process; no preload, so that the forkserver never
        # re-imports the main script of whoever embeds the host
        self.context = multiprocessing.get_context("forkserver")
        self.workers: list[_Worker | None] = [None] * count

    def start(self) -> None:
        for slot in range(len(self.workers)):
            self._spawn(slot)

    def _spawn(self, slot: int) -> _Worker:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=worker_main, args=(child,), daemon=True,
                                       name=f"export-worker-{slot}")
        process.start()
        child.close()
        worker = self.workers[slot] = _Worker(process, parent)
        return worker

    def _kill(self, slot: int) -> None:
        worker = self.workers[slot]
        if worker is not None:
            worker.process.kill()
            worker.process.join(5)
            worker.conn.close()
            worker.process.close()
        self._spawn(slot)

    def _ready(self, slot: int) -> _Worker:
        """The slot's worker, started anew if it is not alive."""
        worker = self.workers[slot]
        if worker is None or not worker.process.is_alive():
            worker = self._spawn(slot)
        return worker

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w is not None and w.process.pid is not None]

    async def run(self, slot: int, task: RenderTask, on_progress: Progress) -> RenderResult:
        worker = self._ready(slot)
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[RenderResult] = loop.create_future()
        crashed = False

        def readable() -> None:
            nonlocal crashed
            try:
                while not outcome.done() and worker.conn.poll():
                    kind, value = worker.conn.recv()
                    if kind == "progress":
                        on_progress(value)
                    elif kind == "done":
                        outcome.set_result(value)
                    elif kind == "cancelled":
                        outcome.set_exception(ExportCancelled("cancelled"))
                    else:
                        outcome.set_exception(RenderFailed(*value))
            except (EOFError, OSError):
                crashed = True
                loop.remove_reader(fd)
                if not outcome.done():
                    outcome.set_exception(RenderFailed("worker_crashed", "the export worker process died"))

        fd = worker.conn.fileno()
        loop.add_reader(fd, readable)
        sending = asyncio.ensure_future(asyncio.to_thread(worker.conn.send, task))  # pickling off the loop
        try:
            await asyncio.shield(sending)
            return await asyncio.shield(outcome)
        except asyncio.CancelledError:
            await self._stop(slot, worker, task, sending, outcome)
            raise
        finally:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(fd)
            if crashed:
                self._kill(slot)

    async def stream(self, slot: int, task: StreamTask) -> Chunks:
        """Run ``task`` on the slot's worker; returns once the source is open (or raises
        :class:`RenderFailed`), with the chunks to come. Close the chunks (``aclose``) to stop early."""
        worker = self._ready(slot)
        await asyncio.to_thread(worker.conn.send, task)
        try:
            kind, value = await _message(worker.conn)
        except RenderFailed:
            self._kill(slot)
            raise
        if kind == "failed":
            raise RenderFailed(*value)
        return self._chunks(slot, worker)

    async def _chunks(self, slot: int, worker: _Worker) -> Chunks:
        finished = False
        ahead = asyncio.ensure_future(_message(worker.conn))
        try:
            while True:
                kind, value = await ahead
                if kind != "chunk":
                    finished = True
                    if kind == "failed":
                        raise RenderFailed(*value)
                    return
                # the next chunk comes up the pipe while this one is sent: the worker never waits on the client
                # for more than one chunk
                ahead = asyncio.ensure_future(_message(worker.conn))
                yield value
        except RenderFailed as exc:
            if exc.reason == "worker_crashed":
                self._kill(slot)
            raise
        finally:
            if not finished:  # the client went away: stop the worker at its next chunk, or replace it
                await asyncio.shield(self._stop_stream(slot, worker, ahead))

    async def _stop_stream(self, slot: int, worker: _Worker, ahead: asyncio.Future[Any]) -> None:
        try:
            worker.conn.send("cancel")
            async with asyncio.timeout(CANCEL_GRACE_S):
                # a read cancelled with its task may have taken a message: then the grace runs out, the worker goes
                kind = "chunk" if ahead.cancelled() else (await ahead)[0]
                while kind == "chunk":
                    kind = (await _message(worker.conn))[0]
        except (TimeoutError, RenderFailed, OSError, asyncio.CancelledError):
            ahead.cancel()
            self._kill(slot)

    async def _stop(self, slot: int, worker: _Worker, task: RenderTask, sending: asyncio.Future[None],
                    outcome: asyncio.Future[RenderResult]) -> None:
        with contextlib.suppress(Exception):
            await sending
        try:
            worker.conn.send("cancel")
            await asyncio.wait_for(asyncio.shield(outcome), CANCEL_GRACE_S)
        except (TimeoutError, ExportCancelled, RenderFailed, OSError):
            pass
        if not outcome.done():
            outcome.cancel()
            self._kill(slot)
            remove_partials(Path(task.directory), task.stem)

    async def close(self) -> None:
        for worker in self.workers:
            if worker is not None:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)

        def join_all() -> None:
            for worker in self.workers:
                if worker is not None:
                    worker.process.join(5)
                    if worker.process.is_alive():
                        worker.process.kill()
                        worker.process.join(5)
                    worker.conn.close()

        await asyncio.to_thread(join_all)


# -- thread workers -------------------------------------------------------------------------------------


class ThreadControl:
    def __init__(self, loop: asyncio.AbstractEventLoop, on_progress: Progress) -> None:
        self.loop = loop
        self.on_progress = on_progress
        self.cancelled = threading.Event()

    def progress(self, records: int) -> None:
        if self.cancelled.is_set():
            raise ExportCancelled("cancelled")
        self.loop.call_soon_threadsafe(self.on_progress, records)


class ThreadWorkers:
    """One thread per slot; simpler, but rendering competes with the event loop for the GIL."""

    def __init__(self, count: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=count, thread_name_prefix="export-worker")

    def start(self) -> None:
        pass

    def pids(self) -> list[int]:
        return []

    async def run(self, slot: int, task: RenderTask, on_progress: Progress) -> RenderResult:
        loop = asyncio.get_running_loop()
        control = ThreadControl(loop, on_progress)
        running = loop.run_in_executor(self.executor, render, task, control)
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            control.cancelled.set()
            with contextlib.suppress(Exception):
                await running
            raise

    async def stream(self, slot: int, task: StreamTask) -> Chunks:
        return in_thread(await asyncio.to_thread(open_csv_stream, task))

    async def close(self) -> None:
        await asyncio.to_thread(self.executor.shutdown, True)


async def in_thread(chunks: Iterator[tuple[int, bytes]]) -> Chunks:
    """``chunks`` made in a thread, one ahead: the next is made while this one is sent."""
    ahead = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
    try:
        while (chunk := await ahead) is not None:
            ahead = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
            yield chunk
    finally:
        ahead.cancel()


def make_workers(kind: str, count: int) -> WorkerPool:
    return ProcessWorkers(count) if kind == "process" else ThreadWorkers(count)
