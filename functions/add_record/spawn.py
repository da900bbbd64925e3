"""ffmpeg started by vfork, its pipes and its exit then handed to the event loop.

uvloop starts a child with fork(): a copy of this process's page tables (5 to 9 ms
for a function of 60 MB, the event loop stopped meanwhile, copy-on-write faults
after). CPython's subprocess starts it with vfork, in 0.6 to 2 ms (docs/performance.md).
The child's exit is awaited on a pidfd (Linux 5.3), then reaped.
"""

import asyncio
import contextlib
import os
import subprocess
from typing import IO


class PipedProcess:
    """A child whose stdin, stdout and stderr are streams on the running loop; what Conversion needs of one."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        stdin: asyncio.StreamWriter,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
        exited: asyncio.Future[None],
    ) -> None:
        self._popen = popen
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._exited = exited

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def kill(self) -> None:
        if self._popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._popen.kill()

    async def wait(self) -> int:
        """Its exit status, once it has exited; it is reaped."""
        await asyncio.shield(self._exited)
        return self._popen.wait()


async def spawn(arguments: list[str]) -> PipedProcess:
    loop = asyncio.get_running_loop()
    # Blocking, but for a vfork and an exec: less than uvloop's own spawn blocks the loop.
    popen = subprocess.Popen(  # noqa: S603, ASYNC220
        arguments, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert popen.stdin is not None
    assert popen.stdout is not None
    assert popen.stderr is not None
    try:
        exited = exit_of(loop, popen.pid)
        stdout = await read_stream(loop, popen.stdout)
        stderr = await read_stream(loop, popen.stderr)
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), popen.stdin
        )
        stdin = asyncio.StreamWriter(transport, protocol, None, loop)
    except BaseException:
        popen.kill()
        popen.wait()
        raise
    return PipedProcess(popen, stdin, stdout, stderr, exited)


async def read_stream(loop: asyncio.AbstractEventLoop, pipe: IO[bytes]) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    return reader


def exit_of(loop: asyncio.AbstractEventLoop, pid: int) -> asyncio.Future[None]:
    """Done when the child `pid` exits (it is not reaped here)."""
    exited: asyncio.Future[None] = loop.create_future()
    pidfd = os.pidfd_open(pid)

    def on_exit() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(pidfd, on_exit)
    return exited
