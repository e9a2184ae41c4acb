"""One training run per work dir: a lock file naming the run that holds it.

Two runs writing to one ``--work-dir`` overwrite each other's checkpoints, ``last_checkpoint``
and config dump, and the second one's start-up deletes the ``*.tmp`` file the first is
writing. ``work_dir/.ctal_mm.lock`` is created exclusively (``O_CREAT | O_EXCL``) by the first
run; a second one stops at once with the holder's host and pid. The holder touches the file
every ``stale_after / 4`` seconds (the heartbeat); a lock whose process is gone (same host),
that has not been touched for ``stale_after`` seconds (a host that died, another host), or
that an earlier run of the same requeued Slurm job left, is taken over with a warning. Only
rank 0 of a distributed run takes it; ``*.tmp`` leftovers of an interrupted save are removed
only by the lock's holder (:func:`claim_work_dir`).
"""

import atexit
import json
import logging
import os
import os.path as osp
import socket
import threading
import time
from typing import Dict, Optional

from mmengine.logging import print_log

LOCK_NAME = '.ctal_mm.lock'
DEFAULT_STALE_AFTER = (
    600.0  # seconds without a heartbeat before a lock is presumed dead
)

_HELD: Dict[
    str, 'WorkDirLock'
] = {}  # real path of the work dir -> this process's lock


class WorkDirLockedError(RuntimeError):
    """Another live run holds the work dir."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _read(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class WorkDirLock:
    """The lock of ``work_dir`` (see the module doc).

    Args:
        work_dir: the run's work dir (created if missing).
        stale_after: seconds without a heartbeat after which another run may take the lock.
    """

    def __init__(
        self, work_dir: str, stale_after: float = DEFAULT_STALE_AFTER
    ):
        self.work_dir = osp.realpath(work_dir)
        self.path = osp.join(self.work_dir, LOCK_NAME)
        self.stale_after = float(stale_after)
        self.owner = dict(
            host=socket.gethostname(),
            pid=os.getpid(),
            started=time.strftime('%Y-%m-%d %H:%M:%S'),
            token=f'{socket.gethostname()}:{os.getpid()}:{time.time_ns()}',
            # a requeued Slurm job keeps its id and counts its restarts
            slurm_job=os.environ.get('SLURM_JOB_ID'),
            slurm_restart=os.environ.get('SLURM_RESTART_COUNT', '0'),
        )
        self._stop = threading.Event()
        self._thread = None
        self._unwritten = False
        self.took_over = (
            None  # the warning logged when a stale lock was taken over
        )

    def _write_owner(self) -> None:
        with open(self.path, 'w') as f:
            json.dump(self.owner, f)
            f.flush()
            os.fsync(f.fileno())
        self._unwritten = False

    # ----------------------------------------------------------------- taking it
    def acquire(self) -> 'WorkDirLock':
        """Take the lock, or raise :class:`WorkDirLockedError` naming its holder."""
        os.makedirs(self.work_dir, exist_ok=True)
        for _ in range(5):
            try:
                fd = os.open(
                    self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644
                )
            except FileExistsError:
                self._take_over_if_stale()
                continue
            os.close(fd)
            try:
                self._write_owner()
            except OSError:
                # a disk full of an interrupted save's leftovers: the empty file is ours
                # (created exclusively); claim_work_dir writes it once they are removed
                self._unwritten = True
            self._start_heartbeat()
            _HELD[self.work_dir] = self
            atexit.register(self.release)
            return self
        raise WorkDirLockedError(
            f'Could not take {self.path}: other runs keep taking it. Start one run per '
            'work dir.'
        )

    def _stale_reason(
        self, holder: Optional[dict], age: float
    ) -> Optional[str]:
        if holder is None:  # being written, or garbage: only its age tells
            return (
                f'it is unreadable and {age:.0f} s old'
                if age > self.stale_after
                else None
            )
        job = self.owner['slurm_job']
        if (
            job is not None
            and holder.get('slurm_job') == job
            and holder.get('slurm_restart') != self.owner['slurm_restart']
        ):
            return (
                f'it is an earlier run of Slurm job {job}, which was requeued'
            )
        if holder.get('host') == self.owner['host'] and not _pid_alive(
            int(holder.get('pid', -1))
        ):
            return f'process {holder.get("pid")} on this host is gone'
        if age > self.stale_after:
            return (
                f'its run has not updated it for {age:.0f} s (stale after '
                f'{self.stale_after:g} s: work_dir_lock.stale_after)'
            )
        return None

    def _take_over_if_stale(self) -> None:
        try:
            age = time.time() - os.stat(self.path).st_mtime
        except FileNotFoundError:
            return  # released meanwhile: try again
        holder = _read(self.path)
        reason = self._stale_reason(holder, age)
        if reason is None:
            if holder is None:  # another run is writing it this very moment
                time.sleep(0.1)
                holder = _read(self.path)
            raise WorkDirLockedError(self._held_message(holder))
        # Renaming is atomic: of two runs taking over the same stale lock one succeeds.
        aside = f'{self.path}.stale.{os.getpid()}'
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        if (
            _read(aside) != holder
        ):  # a live run took it over between our read and rename
            try:
                os.link(aside, self.path)
            except OSError:
                pass
            os.remove(aside)
            return
        os.remove(aside)
        who = (
            f'{holder.get("host")} pid {holder.get("pid")}'
            if holder
            else 'an unknown run'
        )
        self.took_over = f'Took over the lock {self.path} of {who}: {reason}.'
        print_log(
            self.took_over,
            logger='current',
            level=logging.WARNING,
        )

    def _held_message(self, holder: Optional[dict]) -> str:
        holder = holder or {}
        return (
            f'The work dir {self.work_dir} is in use by another run: host '
            f'{holder.get("host", "?")}, pid {holder.get("pid", "?")}, started '
            f'{holder.get("started", "?")} (lock file {self.path}). Two runs in one work '
            "dir overwrite each other's checkpoints. Use another --work-dir, or wait for "
            'that run to end. A lock whose run died is taken over by itself: at once on '
            f'the same host, after {self.stale_after:g} s without a heartbeat from another '
            'host (work_dir_lock = dict(stale_after=SECONDS) in the config).'
        )

    # ----------------------------------------------------------------- holding it
    def _ours(self) -> bool:
        if self._unwritten:
            return osp.isfile(self.path) and os.stat(self.path).st_size == 0
        holder = _read(self.path)
        return bool(holder) and holder.get('token') == self.owner['token']

    def _start_heartbeat(self) -> None:
        interval = max(self.stale_after / 4, 0.05)

        def beat():
            while not self._stop.wait(interval):
                if self._ours():
                    try:
                        os.utime(self.path)
                    except OSError:
                        pass

        self._stop.clear()
        self._thread = threading.Thread(
            target=beat, name='ctal_mm-work-dir-lock', daemon=True
        )
        self._thread.start()

    def release(self) -> None:
        """Give the lock up (again: a no-op). Run at exit too."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if _HELD.get(self.work_dir) is self:
            del _HELD[self.work_dir]
            if self._ours():
                try:
                    os.remove(self.path)
                except OSError:
                    pass


def holds_work_dir_lock(work_dir: str) -> bool:
    """Whether this process holds the lock of ``work_dir``."""
    return osp.realpath(work_dir) in _HELD


def lock_work_dir(
    work_dir: str, stale_after: float = DEFAULT_STALE_AFTER
) -> WorkDirLock:
    """This process's lock of ``work_dir``, taken now unless already held."""
    held = _HELD.get(osp.realpath(work_dir))
    if held is not None:
        return held
    return WorkDirLock(work_dir, stale_after).acquire()


def claim_work_dir(work_dir: str, stale_after: float = DEFAULT_STALE_AFTER):
    """Take the lock of ``work_dir``, then remove what interrupted saves left in it.

    Done before anything is written there (tools/train.py calls it before building the
    Runner), so that a disk an interrupted save filled is freed before the config dump.
    """
    from .checkpoint_files import remove_incomplete_files

    lock = lock_work_dir(work_dir, stale_after)
    for path in remove_incomplete_files(work_dir):
        print_log(
            f'Removed {path}, left by a save that was interrupted.',
            logger='current',
            level=logging.WARNING,
        )
    if lock._unwritten:
        lock._write_owner()
    return lock


def lock_config(cfg) -> Optional[dict]:
    """The arguments of :class:`WorkDirLock` a config asks for (``work_dir_lock``), or None
    when it switches the lock off (``work_dir_lock = None``)."""
    if 'work_dir_lock' in cfg and cfg.work_dir_lock is None:
        return None
    arguments = dict(cfg.get('work_dir_lock') or {})
    unknown = set(arguments) - {'stale_after'}
    if unknown:
        raise ValueError(
            f'work_dir_lock has unknown key(s) {sorted(unknown)}; it takes stale_after '
            '(seconds), or set work_dir_lock = None to run without the lock.'
        )
    return arguments


def launch_rank(launcher: str = 'none') -> int:
    """This process's rank as the launcher set it, before torch.distributed starts."""
    if launcher == 'none':
        return 0
    for variable in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        if variable in os.environ:
            return int(os.environ[variable])
    return 0
