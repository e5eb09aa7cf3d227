"""The three engines of ``check``: this process, local processes, a dask.distributed cluster.

Each engine runs ``audit.check_shard`` on consecutive ranges of images and puts the results back
in image order, so the findings are the same list whatever the engine and the shard size. The
process and dask engines pack each shard (``coco.pack``) as they send it, with a few shards per
worker in flight, so the client's memory holds the dataset once, not twice. Worker
processes run the compiled kernels on one thread each (the parallelism is across images).
"""

from __future__ import annotations

import multiprocessing
import os
from itertools import islice
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from . import coco as _coco
from .audit import check_shard


# With workers=None, datasets under this many annotations run in this process: starting worker
# processes (a second or two) costs more than the whole check.
_AUTO_SERIAL_BELOW = 20000


def _one_thread():
    """Worker initialiser: one OpenMP thread per process."""
    try:
        import fastiou
        fastiou.set_num_threads(1)
    except ImportError:  # numba-only install: nothing to set
        pass


def _worker_init(env: dict):
    """Process-engine worker initialiser: the caller's FASTIOU_* environment (a worker forked
    from the fork server has the server's), one OpenMP thread."""
    for k in [k for k in os.environ if k.startswith("FASTIOU_") and k not in env]:
        del os.environ[k]
    os.environ.update(env)
    _one_thread()


def _context():
    """The fork server where there is one (POSIX): started once, with the audit imported, it
    forks each worker ready to run (spawning one imports numpy and fastiou again, a large part
    of a check of a few thousand images); it never runs a kernel itself, so no OpenMP thread
    pool is forked. Spawn elsewhere. Never plain fork of this process (it may run OpenMP
    threads)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["__main__", "fastiou.diagnostics.audit"])
        return ctx
    return multiprocessing.get_context("spawn")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _shard_size(n_images: int, n_workers: int, given) -> int:
    if given:
        return int(given)
    # a few shards per worker (balance) of at least 16 images (per-task overhead)
    return max(16, min(2000, -(-n_images // max(1, 4 * n_workers))))


def _count(shard) -> int:
    """Images (or items) in a shard."""
    return len(shard.images) if isinstance(shard, _coco.Shard) else len(shard)


def _serial(shards, params, progress, total, fn=check_shard):
    out, done = [], 0
    for _, shard in shards:
        out.append(fn(shard, params))
        done += _count(shard)
        if progress:
            progress(done, total)
    return out


def _processes(shards, params, n, progress, total, fn=check_shard, pack=_coco.pack):
    results = [None] * len(shards)
    env = {k: v for k, v in os.environ.items() if k.startswith("FASTIOU_")}
    done, todo, window = 0, iter(enumerate(shards)), 3 * n  # packed shards in flight, at most
    try:
        with ProcessPoolExecutor(max_workers=n, mp_context=_context(), initializer=_worker_init,
                                 initargs=(env,)) as pool:
            running: dict = {}
            while True:
                for k, (_, shard) in islice(todo, window - len(running)):
                    running[pool.submit(fn, pack(shard), params)] = k
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    k = running.pop(fut)
                    results[k] = fut.result()
                    done += _count(shards[k][1])
                    if progress:
                        progress(done, total)
    except BrokenProcessPool as e:
        # (e.g. a __main__ that a spawned process cannot import: a script read from stdin)
        raise RuntimeError(f"the worker processes failed ({e}); run with workers=1 (--workers 1)") \
            from None
    return results


def _dask(shards, params, address, progress, total, fn=check_shard, pack=_coco.pack):
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError as e:
        raise RuntimeError(f"--dask needs dask.distributed ({e}); pip install 'fastiou[diagnostics]'") \
            from None
    own = not isinstance(address, Client)
    try:
        client = Client(address, set_as_default=False, timeout="20s") if own else address
    except (OSError, ValueError, TypeError) as e:  # (TimeoutError is an OSError)
        raise RuntimeError(f"--dask {address}: cannot reach the dask scheduler ({e})") from None
    try:
        client.run(_one_thread)
        n = max(1, len(client.scheduler_info()["workers"]))
        todo, pos = iter(enumerate(shards)), {}
        results, done = [None] * len(shards), 0

        def submit(count):  # (packed shards in flight, at most: the client packs as they go)
            out = []
            for k, (_, shard) in islice(todo, count):
                fut = client.submit(fn, pack(shard), params, pure=False)
                pos[fut.key] = k
                out.append(fut)
            return out
        queue = dask_completed(submit(3 * n), loop=client.loop)
        for fut in queue:
            k = pos.pop(fut.key)
            results[k] = fut.result()
            done += _count(shards[k][1])
            if progress:
                progress(done, total)
            for nxt in submit(1):
                queue.add(nxt)
        return results
    finally:
        if own:
            client.close()


def run(idx: _coco.Index, p, workers=None, dask=None, shard_size=None, progress=None):
    """``(findings of every image in image order, engine name)``."""
    params = p.to_dict()
    total = len(idx.images)
    if dask is not None:
        try:
            from distributed import Client
            n = len(dask.scheduler_info()["workers"]) if isinstance(dask, Client) else 4
        except ImportError:
            n = 4
        shards = _coco.shards(idx, _shard_size(total, n, shard_size))
        name = dask if isinstance(dask, str) else getattr(dask, "scheduler", None) and \
            getattr(dask.scheduler, "address", "client")
        results = _dask(shards, params, dask, progress, total)
        engine = f"dask ({name})"
    else:
        n = int(workers) if workers is not None else (
            _cores() if idx.n_annotations >= _AUTO_SERIAL_BELOW else 1)
        if n < 1:
            raise ValueError(f"workers: expected a positive number of processes, got {workers!r}")
        shards = _coco.shards(idx, _shard_size(total, n, shard_size))
        if n == 1 or len(shards) < 2:
            results, engine = _serial(shards, params, progress, total), "serial"
        else:
            n = min(n, len(shards))
            results, engine = _processes(shards, params, n, progress, total), f"processes ({n})"
    return [f for r in results for f in r], engine


def map_shards(fn, items: list, params: dict, n_records: int, workers=None, dask=None,
               shard_size=None, progress=None):
    """``fn(shard, params)`` over consecutive shards of ``items`` on one of the three engines.

    The engine rule of ``run`` for any per-image work (``fastiou sweep`` uses it): ``fn`` must be
    importable at module level (it runs in spawned processes and on dask workers) and return one
    result per shard. Returns ``(results in shard order, engine name)``; ``progress(done, total)``
    counts items.
    """
    total = len(items)

    def cut(n):
        size = _shard_size(total, n, shard_size)
        return [(s, items[s:s + size]) for s in range(0, total, size)]
    if dask is not None:
        try:
            from distributed import Client
            n = len(dask.scheduler_info()["workers"]) if isinstance(dask, Client) else 4
        except ImportError:
            n = 4
        name = dask if isinstance(dask, str) else getattr(dask, "scheduler", None) and \
            getattr(dask.scheduler, "address", "client")
        return _dask(cut(n), params, dask, progress, total, fn, _identity), f"dask ({name})"
    n = int(workers) if workers is not None else (_cores() if n_records >= _AUTO_SERIAL_BELOW else 1)
    if n < 1:
        raise ValueError(f"workers: expected a positive number of processes, got {workers!r}")
    shards = cut(n)
    if n == 1 or len(shards) < 2:
        return _serial(shards, params, progress, total, fn), "serial"
    n = min(n, len(shards))
    return _processes(shards, params, n, progress, total, fn, _identity), f"processes ({n})"


def _identity(shard):
    return shard
