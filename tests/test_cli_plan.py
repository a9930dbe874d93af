"""`ftte plan`, the model files it reads (ftte.model.io) and the sparse selection it prints
(ftte.selection). No TensorFlow: models are saved from the reference models."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ftte.cli import main
from ftte.cli.plan import parse_budget
from ftte.model import UpdateSpec
from ftte.model.io import ModelFileError, layout_hash, load_model, save_model
from ftte.selection import select_sparse_update, sparse_candidates
from ftte.train import plan_memory
from ftte.zoo import REFERENCE_MODELS


def _model(name: str = "digits_cnn2d"):
    model = REFERENCE_MODELS[name].build(1)
    model.metadata["source"] = {"format": "test"}
    return model


@pytest.fixture
def saved(tmp_path):
    save_model(_model(), tmp_path / "cnn")
    return tmp_path / "cnn"


def _plan(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _numbers(text: str) -> set[int]:
    return {int(n.replace(",", "")) for n in re.findall(r"[-+]?\d[\d,]*", text)}


# ------------------------------------------------------------------------------------------
# Budget parsing
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("256KB", 262144), ("256KiB", 262144), ("262144", 262144), ("0.5MB", 524288), ("64 kb", 65536),
    ("1.5KB", 1536), ("2MiB", 2097152), ("100B", 100), ("512k", 524288),
])
def test_budget_units(text, expected):
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["", "KB", "12XB", "-5KB", "0", "1.5B", "0.1", "1e3", "256 K B"])
def test_bad_budgets_are_refused(text):
    with pytest.raises(ValueError, match="budget"):
        parse_budget(text)


# ------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------

def test_plan_reference_model(capsys):
    code, out, _ = _plan(capsys, "--model", "digits_cnn2d")
    model = _model()
    full = plan_memory(model, UpdateSpec.full(model), batch=1)
    bias = plan_memory(model, UpdateSpec.bias_only(model), batch=1)
    assert code == 0
    for text in ("digits_cnn2d", "full backprop", "bias only", "sparse", "params in flash", "saved activations",
                 "working activations", "gradients", "scratch", "total (arena RAM)", "262,144 B"):
        assert text in out, text
    numbers = _numbers(out)
    assert {full.total, full.params_ram, full.gradients, bias.total, bias.params_flash} <= numbers
    assert f"0x{layout_hash(model):08x}" in out
    assert "optimizer state" not in out


def test_plan_converted_directory_selects_a_sparse_update(capsys, saved):
    code, out, _ = _plan(capsys, str(saved), "--budget", "64KB")
    model = load_model(saved)
    chosen = select_sparse_update(model, 65536)
    assert code == 0 and chosen is not None
    assert chosen.memory.total <= 65536 and chosen.memory.total in _numbers(out)
    assert f"sparse: {chosen.label}" in out
    assert re.search(r"fits\s.*no\s.*yes\s.*yes", out)  # full does not fit 64 KB, the others do


def test_plan_batch_and_momentum(capsys, saved):
    code, out, _ = _plan(capsys, str(saved), "--batch", "4", "--momentum", "--budget", "0.5MB")
    model = load_model(saved)
    full = plan_memory(model, UpdateSpec.full(model), batch=4, momentum=True)
    assert code == 0 and "optimizer state" in out and "batch 4" in out
    assert {full.total, full.optimizer_state} <= _numbers(out)


def test_plan_exits_1_when_nothing_fits(capsys, saved):
    code, out, _ = _plan(capsys, str(saved), "--budget", "8KB")
    assert code == 1
    assert "nothing fits" in out and "not even one output channel" in out


def test_plan_single_npz_file(capsys, tmp_path):
    save_model(_model("digits_mlp"), tmp_path / "mlp.npz")
    code, out, _ = _plan(capsys, str(tmp_path / "mlp.npz"), "--budget", "262144")
    assert code == 0 and "digits_mlp" in out


@pytest.mark.parametrize("args,message", [
    (("--budget", "12XB", "--model", "digits_mlp"), "budget '12XB'"),
    ((), "give either a model directory/.npz or --model NAME"),
    (("--model", "digits_mlp", "--batch", "0"), "--batch must be at least 1"),
])
def test_plan_bad_arguments(capsys, args, message):
    code, _, err = _plan(capsys, *args)
    assert code == 2 and message in err


def test_plan_both_directory_and_model(capsys, saved):
    code, _, err = _plan(capsys, str(saved), "--model", "digits_mlp")
    assert code == 2 and "not both" in err


# ------------------------------------------------------------------------------------------
# Bad model files: exit 2 with the reason
# ------------------------------------------------------------------------------------------

def test_missing_directory(capsys, tmp_path):
    code, _, err = _plan(capsys, str(tmp_path / "nope"))
    assert code == 2 and "no FTTE model at" in err
    (tmp_path / "empty").mkdir()
    code, _, err = _plan(capsys, str(tmp_path / "empty"))
    assert code == 2 and "needs manifest.json and weights.npz" in err


def test_corrupt_manifest(capsys, saved):
    (saved / "manifest.json").write_text('{"format": "ftte-model", "layers": [')
    code, _, err = _plan(capsys, str(saved))
    assert code == 2 and "manifest.json is not valid JSON" in err


def test_manifest_missing_field(capsys, saved):
    data = json.loads((saved / "manifest.json").read_text())
    del data["layers"][2]["op"]
    (saved / "manifest.json").write_text(json.dumps(data))
    code, _, err = _plan(capsys, str(saved))
    assert code == 2 and "layer 2: missing 'op'" in err


def test_weights_of_another_model(capsys, saved, tmp_path):
    save_model(_model("digits_mlp"), tmp_path / "mlp")
    (saved / "weights.npz").write_bytes((tmp_path / "mlp" / "weights.npz").read_bytes())
    code, _, err = _plan(capsys, str(saved))
    assert code == 2 and "layout hash mismatch: the weights are for layout" in err


def test_edited_geometry_changes_the_layout_hash(capsys, saved):
    data = json.loads((saved / "manifest.json").read_text())
    data["layers"][0]["pad"] = [1, 1]  # still a valid conv, another layout
    (saved / "manifest.json").write_text(json.dumps(data))
    code, _, err = _plan(capsys, str(saved))
    assert code == 2 and "states 0x" in err and "but its layers give" in err


def test_wrong_weight_shape(saved):
    data = json.loads((saved / "manifest.json").read_text())
    data["layers"][0]["params"][0]["shape"] = [8, 9]
    (saved / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="layer 0: layer0.weights has shape"):
        load_model(saved)


def test_not_an_npz(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a readable .npz"):
        load_model(tmp_path / "junk.npz")


# ------------------------------------------------------------------------------------------
# Model files and selection
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["directory", "file.npz"])
def test_save_load_round_trip(tmp_path, target):
    model = _model("accel_cnn1d")
    data = save_model(model, tmp_path / target)
    loaded = load_model(tmp_path / target)
    assert data["layout_hash"] == f"0x{layout_hash(model):08x}" and data["parameters"] == model.parameter_count()
    assert loaded.name == model.name and loaded.input_shape == model.input_shape
    assert loaded.metadata["source"] == {"format": "test"}
    for ours, theirs in zip(loaded.layers, model.layers):
        assert (ours.name, ours.op, ours.in_shape, ours.out_shape, ours.kernel, ours.stride, ours.pad) == (
            theirs.name, theirs.op, theirs.in_shape, theirs.out_shape, theirs.kernel, theirs.stride, theirs.pad)
    for ours, theirs in zip(loaded.get_parameters(), model.get_parameters()):
        np.testing.assert_array_equal(ours, theirs)
    groups = [g for layer in data["layers"] for g in layer["params"]]
    assert sum(g["size"] for g in groups) == model.parameter_count()
    assert all(g["rows"] * g["row_length"] == g["size"] for g in groups)


@pytest.mark.parametrize("name", list(REFERENCE_MODELS))
@pytest.mark.parametrize("budget", [16 * 1024, 48 * 1024, 96 * 1024])
def test_selection_is_the_largest_fitting_candidate(name, budget):
    model = _model(name)
    found = sparse_candidates(model, budget)
    chosen = select_sparse_update(model, budget)
    assert all(c.memory.total <= budget for c in found)
    if chosen is not None:
        assert chosen.memory.trainable_params == max(c.memory.trainable_params for c in found)
        assert plan_memory(model, chosen.spec).total == chosen.memory.total
        # one more channel of the partly trained layer would not fit
        partial = [(i, u) for i, u in enumerate(chosen.spec.layers) if u.mode == "channels"]
        for index, update in partial:
            extra = next(c for c in range(model.layers[index].channels) if c not in update.channels)
            bigger = list(chosen.spec.layers)
            bigger[index] = type(update)("channels", update.channels + (extra,))
            assert plan_memory(model, UpdateSpec(tuple(bigger))).total > budget


def test_selection_with_a_roomy_budget_is_full_backprop():
    model = _model("digits_mlp")
    chosen = select_sparse_update(model, 1 << 20)
    assert chosen is not None and chosen.memory.trainable_params == model.parameter_count()


def test_selection_follows_importance():
    model = _model("digits_mlp")
    importance = [None] * len(model.layers)
    importance[3] = np.arange(model.layers[3].channels, dtype=float)  # the last channels matter most
    chosen = select_sparse_update(model, 8 * 1024, importance=importance)
    assert chosen is not None
    channels = chosen.spec.layers[3].channels
    assert channels and channels == tuple(range(32 - len(channels), 32))
