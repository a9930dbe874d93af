"""Training on Ray workers: `--backend ray`.

Each worker (a Ray actor) holds its own `Trainers` pool over the same model and data (sent
once through Ray's object store). A simulated board submits its task's training when the task
starts and collects the result when the task ends on the simulated clock, so tasks that overlap
in simulated time train in parallel on the workers.

Results are identical to the local backend's for the same seed: a job carries everything its
training depends on (the provisioned vector, the task's values, the sample indices of every
step, the hyperparameters), a worker reloads its model and arena from the job alone, and the
C kernels are deterministic. The order of events is decided by the simulated clock only, never
by which worker answers first.
"""

from __future__ import annotations

import itertools
import os

from ftte.sim.board import Job, Trained, Trainers


def _ray():
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # no GPUs here: silence Ray's notice
    try:
        import ray
    except ImportError:
        raise ValueError("--backend ray needs Ray: pip install ray") from None
    return ray


class _Worker:
    def __init__(self, model, x, y):
        self.trainers = Trainers(model, x, y)

    def train(self, job: Job) -> Trained:
        return self.trainers.train(job)


class RayBackend:
    name = "ray"

    def __init__(self, trainers: Trainers, workers: int = 2):
        ray = _ray()
        if not ray.is_initialized():
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False,
                     ignore_reinit_error=True, configure_logging=False)
        self.ray = ray
        self.trainers = trainers  # used here for memory plans and work counts only
        remote = ray.remote(num_cpus=1)(_Worker)
        model, x, y = ray.put(trainers.model), ray.put(trainers.x), ray.put(trainers.y)
        self.workers = [remote.remote(model, x, y) for _ in range(max(1, workers))]
        self._next = itertools.cycle(self.workers)

    def submit(self, job: Job):
        return next(self._next).train.remote(job)

    def fetch(self, handle) -> Trained:
        return self.ray.get(handle)

    def close(self) -> None:
        for worker in self.workers:
            self.ray.kill(worker)
        self.workers = []
