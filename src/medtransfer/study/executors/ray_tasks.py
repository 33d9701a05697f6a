"""Trials as Ray tasks (``pip install medtransfer[ray]``).

How the data reach the workers: through Ray's object store. The trial's work (:class:`~medtransfer.study.trial_work.
TrialWork`: the decoded, resized images every trial reads, the split, the settings, and the frozen-prefix cache
when it is in RAM) is put there once and every task reads that one copy; a node that runs several trials fetches it
once. So the workers need neither the source files nor medtransfer's readers (DICOM, NIfTI…) to agree on a shared
path, and nothing is decoded twice. A cache spilled to disk travels as the paths of its memory-mapped files, so on a
cluster it needs the study folder on storage every node mounts; the study folder is also where a worker saves the
trial's model for the runner to keep, so the same holds for it: on a cluster, put the study on shared storage.

Each task asks for ``threads`` CPUs (and ``gpus`` of a GPU, when the cluster has GPUs: 0.5 runs two small trials on
one GPU). Ray re-runs a task whose worker process or node died (``retries`` times), and only the runner records a
trial, when its task returns, so a retried trial is recorded once.
"""

from __future__ import annotations

import os
import queue as queue_module

from medtransfer.errors import ConfigError
from medtransfer.study.executors.base import Executor, ProgressRelay, RemoteProgress, available_cores, plural


def _run_remote(work, trial, slot: int, messages, threads: int):
    """A Ray task: one trial, its progress and start sent to the runner through ``messages``."""
    import torch

    torch.set_num_threads(threads)
    send = messages.put_nowait if messages is not None else (lambda _m: None)
    send(("started", slot, trial, os.getpid()))
    return work(trial, RemoteProgress(send, slot) if messages is not None else None)


class RayExecutor(Executor):
    """Trials as Ray tasks on the cluster at ``address`` (``auto``, ``ray://head:10001``, …), or on a local Ray
    started for the study (``num_cpus`` of this machine, on the loopback address) when ``address`` is None."""

    name = "ray"

    def __init__(self, address: str | None = None, threads: int = 1, gpus: float | None = None, *,
                 num_cpus: int | None = None, retries: int = 2):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError("the ray executor needs Ray: pip install 'medtransfer[ray]'") from None
        self.address, self.threads, self.gpus = address, int(threads), gpus
        self.num_cpus, self.retries = num_cpus, int(retries)
        self.on_start = None  # (trial, worker pid): for tests and logs

    def where(self, device: str) -> str:
        place = f"Ray cluster {self.address}" if self.address else "local Ray"
        return f"{device} · {place}, {plural(self.threads, 'CPU')} per trial" + (f", {self.gpus} GPU" if self.gpus else "")

    def _init(self):
        import ray

        if ray.is_initialized():
            return False
        if self.address:
            ray.init(address=self.address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(num_cpus=self.num_cpus or available_cores(), include_dashboard=False, log_to_driver=False,
                     configure_logging=False, _node_ip_address="127.0.0.1")
        return True

    def run(self, trials, work, accept, *, progress=None, log=print, failed=None) -> None:
        import ray
        from ray.exceptions import RayError
        from ray.util.queue import Queue

        started_here = self._init()
        gpus = self.gpus
        if gpus is None:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) and work.device.startswith("cuda") else 0
        messages = Queue()
        remote = ray.remote(_run_remote).options(num_cpus=self.threads, num_gpus=gpus, max_retries=self.retries,
                                                 retry_exceptions=False)
        shared = ray.put(work)
        futures = {remote.remote(shared, t, slot, messages, self.threads): (slot, t) for slot, t in enumerate(trials)}
        bars, starts = ProgressRelay(progress), {}
        try:
            while futures:
                done, _ = ray.wait(list(futures), num_returns=1, timeout=0.2)
                self._drain(messages, bars, starts, log)
                for ref in done:
                    slot, trial = futures.pop(ref)
                    bars.drop(slot)
                    try:
                        report = ray.get(ref)
                    except RayError as e:  # its worker died more often than Ray retries, or Ray failed it
                        if failed is not None:
                            failed(trial, f"Ray gave up on it after {starts.get(trial.id, 1)} attempts: "
                                          f"{type(e).__name__}: {str(e).splitlines()[0]}")
                        continue
                    accept(report)
        except BaseException:
            for ref in futures:
                ray.cancel(ref, force=True)
            raise
        finally:
            for slot in list(bars.labels):
                bars.drop(slot)
            try:
                ray.kill(messages.actor)
            except Exception:
                pass
            if started_here:
                ray.shutdown()

    def _drain(self, messages, bars: ProgressRelay, starts: dict, log) -> None:
        while True:
            try:
                msg = messages.get_nowait()
            except queue_module.Empty:
                return
            except Exception:  # the queue's actor is gone (shutdown)
                return
            if msg[0] == "progress":
                bars.message(msg[1], *msg[2:])
            elif msg[0] == "started":
                trial, pid = msg[2], msg[3]
                starts[trial.id] = starts.get(trial.id, 0) + 1
                bars.labels[msg[1]] = trial.label()
                if starts[trial.id] > 1:
                    bars.drop(msg[1])
                    log(f"↻ {trial.label()}: its worker died; Ray runs it again (pid {pid})")
                if self.on_start is not None:
                    self.on_start(trial, pid)
