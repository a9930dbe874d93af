"""--backend ray gives the same run as the local backend for the same seed (a tiny fleet)."""

from __future__ import annotations

import pytest

from ftte.sim import Arm, Fleet, SimConfig

ray = pytest.importorskip("ray", reason="the Ray backend needs ray (pip install ray)")

TINY = SimConfig(model="digits_mlp", boards=8, ram=16 * 1024, lr=0.02, local_steps=4, batch=1, updates=60,
                 rounds=3, buffer_size=4, stragglers=0.5, evals=5, start_epochs=5, ray_workers=2)


def _fingerprint(result):
    return [(e["event"], e.get("board"), e.get("version"), e.get("time"), e.get("accuracy"), e.get("loss_after"),
             e.get("variance")) for e in result.events]


def test_ray_backend_matches_the_local_backend_bit_for_bit():
    try:
        arm = Arm("ftte")
        local = Fleet.build(TINY).run_arm(arm)
        remote = Fleet.build(TINY.replace(backend="ray")).run_arm(arm)
        assert remote.accepted == local.accepted > 0
        assert _fingerprint(remote) == _fingerprint(local)
        assert remote.curve == local.curve
    finally:
        if ray.is_initialized():
            ray.shutdown()
