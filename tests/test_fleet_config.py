"""fleet.toml parsing (typed values, errors that name the key), the data partition, and the
choice of the update spec that fits the weakest board."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ftte.aggregation import AgeWeight, FedAvgConfig, FTTEConfig
from ftte.fleet import ConfigError, choose_spec, dirichlet, iid, load_config, parse_config, partition, usable_budget
from ftte.fleet.config import parse_ram
from ftte.model import UpdateSpec
from ftte.train import plan_memory
from ftte.zoo import reference_model

FULL = """
[model]
name = "digits_mlp"
seed = 3

[data]
partition = "dirichlet"
alpha = 0.3
server_share = 0.05
seed = 7

[start]
mode = "pretrained"
epochs = 10

[strategy]
name = "ftte"
buffer_size = 6
max_staleness = "none"
age = { kind = "hinge", a = 1.0, b = 2 }

[training]
lr = 0.1
local_steps = 5
batch = 8

[budget]
margin = 0.2
spec = { dense_5 = "full", dense_3 = [0, 2, 4] }

[[boards]]
inprocess = 6
ram = "48KB"
delay = 0.01

[[boards]]
port = "/dev/ttyUSB0"
ram = 32768

[stop]
max_versions = 0
target_accuracy = 0.93

[run]
task_timeout = 5
eval_every = 2

[output]
dir = "out/run1"
progress = false
"""


def config_text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    return path


def test_a_full_config_becomes_typed_values(tmp_path):
    c = load_config(config_text(tmp_path, FULL))
    assert (c.model.name, c.model.seed) == ("digits_mlp", 3)
    assert (c.data.partition, c.data.alpha, c.data.server_share, c.data.seed) == ("dirichlet", 0.3, 0.05, 7)
    assert (c.start.mode, c.start.epochs) == ("pretrained", 10)
    assert c.strategy.config == FTTEConfig(buffer_size=6, max_staleness=None, age=AgeWeight("hinge", 1.0, 2))
    assert (c.training.lr, c.training.local_steps, c.training.batch) == (0.1, 5, 8)
    assert c.budget.margin == 0.2 and c.budget.spec == {"dense_5": "full", "dense_3": [0, 2, 4]}
    assert [(b.kind, b.count, b.ram) for b in c.boards] == [("inprocess", 6, 48 * 1024), ("port", 1, 32768)]
    assert c.boards[1].port == "/dev/ttyUSB0" and c.boards[0].delay == 0.01
    assert (c.stop.max_versions, c.stop.target_accuracy, c.stop.max_seconds) == (None, 0.93, None)
    assert (c.run.task_timeout, c.run.eval_every) == (5.0, 2)
    assert c.output_dir == tmp_path / "out" / "run1" and c.output.progress is False


def test_defaults_need_only_a_model_and_boards():
    c = parse_config({"model": {"name": "digits_mlp"}, "boards": [{"inprocess": 2}], "strategy": {"name": "fedavg"}})
    assert c.strategy.config == FedAvgConfig() and c.data.partition == "iid" and c.start.mode == "pretrained"
    assert c.stop.max_versions == 100 and c.boards[0].ram == 64 * 1024
    assert c.as_dict()["strategy"] == {"name": "fedavg", "params": {}}


def test_the_example_in_the_docs_parses(tmp_path):
    text = (Path(__file__).parents[1] / "docs" / "coordinator.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    config = load_config(config_text(tmp_path, block))
    assert config.boards and config.strategy.name == "ftte"


BAD = [
    ("[training]\nlrr = 0.1", "[training] 'lrr': unknown key; did you mean 'lr'?"),
    ("[traning]\nlr = 0.1", "top level 'traning': unknown key; did you mean 'training'?"),
    ("[training]\nlr = -1", "[training] lr: expected a number > 0, got -1"),
    ("[training]\nbatch = 2.5", "[training] batch: expected an int >= 1, got 2.5"),
    ("[strategy]\nbuffer_sise = 4", "[strategy] 'buffer_sise': unknown key; did you mean 'buffer_size'?"),
    ("[strategy]\nbuffer_size = \"4\"", "[strategy] buffer_size: expected int"),
    ("[strategy]\nbuffer_size = 0", "[strategy] buffer_size: buffer size must be >= 1"),
    ("[strategy]\nname = \"fedprox\"", "[strategy] name: expected 'ftte' | 'fedbuff' | 'fedasync' | 'fedavg'"),
    ("[strategy]\nage = { kind = \"linear\" }", "[strategy] age: age weight kind must be one of"),
    ("[strategy]\nname = \"fedavg\"\nfraction = 2.0", "[strategy] fraction: fraction must be in (0, 1]"),
    ("[data]\npartition = \"dirichlett\"", "[data] partition: expected 'iid' | 'dirichlet', got 'dirichlett'"),
    ("[data]\nalpha = 0", "[data] alpha: expected a number > 0, got 0"),
    ("[start]\nmode = \"warm\"", "[start] mode: expected 'pretrained' | 'scratch'"),
    ("[stop]\nmax_versions = 0", "[stop]: a run must end"),
    ("[stop]\ntarget_accuracy = 90", "[stop] target_accuracy: expected a fraction in (0, 1], got 90"),
    ("[output]\nprogress = \"yes\"", "[output] progress: expected bool, got 'yes'"),
]


@pytest.mark.parametrize("snippet, message", BAD)
def test_errors_name_the_file_section_and_key(tmp_path, snippet, message):
    path = config_text(tmp_path, '[model]\nname = "digits_mlp"\n[[boards]]\ninprocess = 2\n' + snippet)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


@pytest.mark.parametrize("boards, message", [
    ("", "[[boards]]: at least one boards entry is needed"),
    ("[[boards]]\ninprocess = 2\nport = \"/dev/x\"", "[[boards]] #1: give exactly one of"),
    ("[[boards]]\ninprocess = 0", "[[boards]] #1 inprocess: expected an int >= 1, got 0"),
    ("[[boards]]\ninprocess = 2\n[[boards]]\ninprocess = 1\nram = \"12XB\"", "[[boards]] #2 ram: expected bytes"),
    ("[[boards]]\ninprocess = 2\nrams = 1", "[[boards]] #1 'rams': unknown key; did you mean 'ram'?"),
])
def test_board_errors_name_the_entry(tmp_path, boards, message):
    with pytest.raises(ConfigError, match=None) as error:
        load_config(config_text(tmp_path, '[model]\nname = "digits_mlp"\n' + boards))
    assert message in str(error.value)


def test_model_errors(tmp_path):
    for text, message in [("[model]\nname = \"digits_mpl\"", "[model] name: unknown reference model 'digits_mpl'"),
                          ("[model]\nseed = 1", "[model]: give exactly one of name"),
                          ("[model]\nname = \"digits_mlp\"\n[data]\nserver_share = 0\n",
                           "[start] mode: 'pretrained' needs data the host holds"),
                          ("model = 3", "[model]: must be a table")]:
        with pytest.raises(ConfigError) as error:
            load_config(config_text(tmp_path, text + "\n[[boards]]\ninprocess = 1\n"))
        assert message in str(error.value), text
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(config_text(tmp_path, "[model\n"))
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")


def test_ram_units():
    assert parse_ram(1000) == 1000 and parse_ram("64K") == parse_ram("64KB") == parse_ram("64KiB") == 65536
    assert parse_ram("0.5MB") == 512 * 1024 and parse_ram("100 b") == 100
    for bad in ("12XB", "-1", "0.5", 0, ""):
        with pytest.raises(ValueError):
            parse_ram(bad)


# ------------------------------------------------------------------------------------------
# Partition
# ------------------------------------------------------------------------------------------

LABELS = np.repeat(np.arange(10), 100)  # 1000 samples, 10 balanced classes


def label_entropy(labels: np.ndarray, part: np.ndarray) -> float:
    p = np.bincount(labels[part], minlength=10) / len(part)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


@pytest.mark.parametrize("scheme, alpha", [("iid", 0), ("dirichlet", 0.1), ("dirichlet", 1.0), ("dirichlet", 100.0)])
def test_partition_is_a_seeded_disjoint_cover(scheme, alpha):
    parts = partition(LABELS, 8, scheme, alpha, seed=4)
    joined = np.concatenate(parts)
    assert len(parts) == 8 and min(len(p) for p in parts) >= 1
    assert np.array_equal(np.sort(joined), np.arange(len(LABELS)))  # every sample exactly once
    assert all(np.array_equal(p, np.sort(p)) for p in parts)
    again = partition(LABELS, 8, scheme, alpha, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))  # pure function of its arguments
    other = partition(LABELS, 8, scheme, alpha, seed=5)
    assert any(not np.array_equal(a, b) for a, b in zip(parts, other))


def test_iid_sizes_differ_by_at_most_one():
    sizes = [len(p) for p in iid(np.zeros(1003), 8)]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 1003


def test_dirichlet_skew_grows_as_alpha_shrinks():
    mean_entropy = {a: np.mean([label_entropy(LABELS, p) for p in dirichlet(LABELS, 10, a, seed=1)])
                    for a in (0.05, 0.5, 100.0)}
    assert mean_entropy[0.05] < mean_entropy[0.5] < mean_entropy[100.0]
    assert mean_entropy[100.0] > 0.95 * np.log(10)  # near-uniform labels: about IID
    assert mean_entropy[0.05] < 0.5 * np.log(10)    # one or two classes per board


def test_dirichlet_gives_every_board_min_size_or_says_why():
    parts = dirichlet(LABELS, 20, 0.1, seed=0, min_size=10)
    assert min(len(p) for p in parts) >= 10
    with pytest.raises(ValueError, match="raise alpha or use fewer boards"):
        dirichlet(LABELS[:40], 20, 0.01, seed=0, min_size=2, attempts=5)
    with pytest.raises(ValueError, match="cannot give 8 boards"):
        partition(LABELS[:5], 8)
    with pytest.raises(ValueError, match="partition must be one of"):
        partition(LABELS, 2, "shards")


# ------------------------------------------------------------------------------------------
# Update spec under the weakest board's budget
# ------------------------------------------------------------------------------------------

def test_auto_spec_fits_the_weakest_board_with_margin():
    model = reference_model("digits_mlp").build(0)
    budget = usable_budget([64 * 1024, 32 * 1024, 48 * 1024], 0.1)
    assert budget == int(32 * 1024 * 0.9)
    chosen = choose_spec(model, budget, batch=16, momentum=False)
    assert chosen.memory.total <= budget and chosen.memory == plan_memory(model, chosen.spec, 16)
    full = plan_memory(model, UpdateSpec.full(model), 16)
    assert full.total > budget and chosen.memory.trainable_params < full.trainable_params
    roomy = choose_spec(model, 10 ** 6, batch=16, momentum=False)
    assert roomy.memory.trainable_params == full.trainable_params  # everything fits: train everything
    with pytest.raises(ValueError, match="nothing of digits_mlp can train in 2,000 B"):
        choose_spec(model, 2000, 16, False)


def test_explicit_spec_is_checked_against_the_budget():
    model = reference_model("digits_mlp").build(0)
    chosen = choose_spec(model, 10 ** 6, 16, False, {"dense_5": "full", "dense_3": [1, 3]})
    assert [u.mode for u in chosen.spec.layers][-1] == "full" and chosen.spec.layers[3].channels == (1, 3)
    with pytest.raises(ValueError, match="needs a .* B training arena"):
        choose_spec(model, 1000, 16, False, "full")
    with pytest.raises(ValueError, match="no layer 'dense_9'"):
        choose_spec(model, 10 ** 6, 16, False, {"dense_9": "full"})
