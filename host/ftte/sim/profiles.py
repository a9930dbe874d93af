"""Board and link profiles, and the cost model that turns a task into simulated seconds.

A board's compute time follows the model's multiply-accumulates (MACs), counted by the C
kernels themselves (`ftte_layer_macs`), and what the update spec makes a training step run:

    forward:          every layer, every sample
    backward, input:  only layers above the lowest trainable layer (nothing below it is
                      back-propagated: the C trainer stops there)
    backward, weight: only the trainable rows (full layer, or the selected channels)

    seconds = samples * sum(MACs x instructions/MAC of that op and direction)
              * isa_factor * cycles_per_instruction / clock

Instructions per MAC are measured on a Cortex-M4F (`python -m ftte.bench.instructions`:
arm-none-eabi-gcc -O2 build, executed instructions counted in unicorn), which saves them to
`instructions_m4f.json` beside `ftte.sim.measured`; the cost model reads them from there only.
Other cores scale them by `isa_factor` (instructions relative to Thumb-2 + FPv4) and `cpi` (cycles per
instruction): those two are stated assumptions, not measurements, and every profile says so.

A link moves `bytes` in  latency + bytes / goodput + chunks x turnaround  seconds, where
goodput is the PHY rate times the framing efficiency measured for the wire protocol
(docs/protocol.md: 1 KB frames, with ACKs), and turnaround is the stop-and-wait ACK of each
chunk. Profiles, links and their sources: docs/simulator.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ftte.model import Model, UpdateSpec
from ftte.sim import measured

# ---------------------------------------------------------------------------------------------
# Instructions per MAC on a Cortex-M4F
# ---------------------------------------------------------------------------------------------

IPM_DEFAULT = 2.5  # an operator the benchmark does not cover


ISAS = {"m4f": measured.DATA, "rv32imc": measured.DATA_RV32}  # instruction set -> its measurements


def ipm_source(isa: str = "m4f") -> str:
    """What the instructions/MAC were measured with (the header of the committed data file)."""
    return measured.load(ISAS[isa]).source


def instructions_per_mac(op: str, direction: str, batch: int = 1, isa: str = "m4f") -> float:
    """Executed instructions per MAC of `op` in `direction` at `batch` on `isa` ("m4f": Cortex-M4F,
    `python -m ftte.bench.instructions`; "rv32imc": RV32IMC soft float,
    `python -m ftte.bench.instructions_rv32`), as last measured and saved (ftte.sim.measured)."""
    value = measured.load(ISAS[isa]).per_mac(op, direction, batch)
    return IPM_DEFAULT if value is None else value


# ---------------------------------------------------------------------------------------------
# Links
# ---------------------------------------------------------------------------------------------

WIRE_EFFICIENCY = 0.95  # docs/protocol.md: 1 KB frames, 10 KB task, ACKs counted (95.0 %)
CHUNK = 1008            # data bytes per 1 KB frame (docs/protocol.md)


@dataclass(frozen=True)
class Link:
    """How long moving n payload bytes takes: latency + n / goodput + ceil(n / chunk) x turnaround."""

    name: str
    rate: float        # payload bytes/s of the PHY or UART before our framing
    latency: float     # seconds per transfer (request/response set-up)
    turnaround: float  # seconds per chunk waiting for its ACK (stop and wait)
    source: str

    @property
    def goodput(self) -> float:
        return self.rate * WIRE_EFFICIENCY

    def seconds(self, payload: int) -> float:
        if payload <= 0:
            return self.latency
        return self.latency + payload / self.goodput + math.ceil(payload / CHUNK) * self.turnaround


LINKS: dict[str, Link] = {link.name: link for link in (
    Link("uart115200", 115200 / 10, 0.002, 0.001,
         "8N1 UART: 10 bits per byte; ~1 ms USB-serial turnaround per ACK (USB full-speed frame)"),
    Link("uart921600", 921600 / 10, 0.002, 0.001,
         "8N1 UART: 10 bits per byte; ~1 ms USB-serial turnaround per ACK (USB full-speed frame)"),
    Link("ble1m", 90_000, 0.030, 0.0075,
         "BLE 1M PHY with data length extension: ~0.72 Mbit/s application throughput (Nordic S140 "
         "SoftDevice throughput figures, best case); one 7.5 ms connection interval per ACK; 30 ms set-up"),
    Link("ble2m", 160_000, 0.030, 0.0075,
         "BLE 2M PHY with data length extension: ~1.3 Mbit/s application throughput (Nordic S140 "
         "SoftDevice throughput figures, best case); one 7.5 ms connection interval per ACK; 30 ms set-up"),
)}


# ---------------------------------------------------------------------------------------------
# Boards
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BoardProfile:
    name: str
    core: str
    clock_mhz: float
    sram: int          # bytes of RAM on the chip (datasheet)
    flash: int         # bytes of flash the model's weights can use (datasheet)
    train_ram: int     # bytes this profile gives the training arena by default (assumption)
    links: tuple[str, ...]  # links the board has; the first is its default
    isa_factor: float  # instructions relative to the measurement of `isa` (1: the measured ISA itself)
    cpi: float         # cycles per instruction (assumption)
    source: str
    isa: str = "m4f"   # whose instructions/MAC the cost model uses (ISAS)

    @property
    def link(self) -> Link:
        return LINKS[self.links[0]]

    def with_link(self, name: str) -> "BoardProfile":
        if name not in self.links:
            raise ValueError(f"{self.name} has no {name} link (it has {', '.join(self.links)})")
        return replace(self, links=(name,) + tuple(n for n in self.links if n != name))

    def seconds_for(self, instructions: float) -> float:
        return instructions * self.isa_factor * self.cpi / (self.clock_mhz * 1e6)


KB = 1024
PROFILES: dict[str, BoardProfile] = {p.name: p for p in (
    BoardProfile("nrf52840", "Cortex-M4F", 64, 256 * KB, 1024 * KB, 64 * KB, ("ble2m", "ble1m", "uart115200"),
                 1.0, 1.25,
                 "Nordic nRF52840 Product Specification v1.7: 64 MHz Cortex-M4F, 256 KB RAM, 1 MB flash, "
                 "BLE 5 (1M and 2M PHY). Instructions/MAC measured (M4F); CPI 1.25 assumed (FPU MAC and "
                 "loads take 2-3 cycles, most others 1)"),
    BoardProfile("esp32", "Xtensa LX6 (1 of 2 cores)", 240, 520 * KB, 4096 * KB, 128 * KB,
                 ("uart921600", "uart115200", "ble1m"), 1.0, 1.25,
                 "Espressif ESP32 Datasheet v4.x: dual-core Xtensa LX6 up to 240 MHz with a single-precision "
                 "FPU, 520 KB SRAM, 4 MB flash (module), BLE 4.2 (1M PHY only). Instruction count assumed equal "
                 "to the M4F's (madd.s FPU); CPI 1.25 assumed"),
    BoardProfile("esp32c3", "RISC-V RV32IMC, no FPU", 160, 400 * KB, 4096 * KB, 96 * KB,
                 ("ble2m", "ble1m", "uart921600", "uart115200"), 1.0, 1.1,
                 "Espressif ESP32-C3 Datasheet v1.x: single-core RV32IMC up to 160 MHz, no FPU, 400 KB SRAM, "
                 "4 MB flash, BLE 5 (1M and 2M PHY). float32 runs in libgcc soft float: instructions/MAC "
                 "measured on RV32IMC (python -m ftte.bench.instructions_rv32, libgcc's __mulsf3/__addsf3 "
                 "counted); CPI 1.1 assumed", "rv32imc"),
    BoardProfile("cortex-m7", "Cortex-M7 (STM32H743 class)", 480, 1024 * KB, 2048 * KB, 256 * KB,
                 ("uart921600", "uart115200"), 1.0, 0.7,
                 "ST STM32H743 datasheet (DS12110): 480 MHz Cortex-M7 with FPU, 1 MB RAM, 2 MB flash; same "
                 "Thumb-2 instruction count as the M4F; CPI 0.7 assumed (dual issue, caches on)"),
)}


def profile(name: str) -> BoardProfile:
    if name not in PROFILES:
        raise ValueError(f"unknown board profile {name!r}; known: {', '.join(PROFILES)}")
    return PROFILES[name]


# ---------------------------------------------------------------------------------------------
# Work of a task
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TaskWork:
    """Per training sample of one (model, spec): MACs by direction, and the instructions of the
    whole step on the ISA it was made for (MAC kernels, and `other_instructions` of that:
    SGD, activations, pools, bias gradients, loss, zeroing)."""

    forward_macs: int
    backward_input_macs: int
    backward_weight_macs: int
    instructions: float  # instructions per sample (the whole step / batch) of the ISA it was made for
    other_instructions: float = 0.0  # of `instructions`, those outside the MAC kernels

    @property
    def macs(self) -> int:
        return self.forward_macs + self.backward_input_macs + self.backward_weight_macs


# Operators whose layers, when they train some channels, run the forward and the backward to the
# input in one call over every output channel (kernels/src/train/layer_passes.c).
ONE_PASS = ("conv1d", "conv2d", "dense", "pointwise_conv2d")


def _runs(layer, update) -> list[tuple[bool, int]]:
    """(trainable, width) of each run of output channels, as ftte_next_run walks them."""
    if update.mode != "channels":
        return [(update.mode == "full", layer.channels)]
    chosen = set(update.channels)
    runs: list[tuple[bool, int]] = []
    for o in range(layer.channels):
        t = o in chosen
        if runs and runs[-1][0] == t:
            runs[-1] = (t, runs[-1][1] + 1)
        else:
            runs.append((t, 1))
    return runs


def task_work(model: Model, spec: UpdateSpec, batch: int = 1, isa: str = "m4f", momentum: bool = False) -> TaskWork:
    """MACs and instructions (of `isa`) of one training sample under `spec`: one
    ftte_train_step of `batch` samples walked as kernels/src/train/train_step.c runs it (the
    plan says which activations keep a mask and which pools an argmax), each operation costed
    from the measured file (ftte.sim.measured), divided by the batch. A file without the ops
    section falls back to MACs x instructions/MAC (see the module doc)."""
    from ftte.train.table import LayerTable

    table = LayerTable(model)
    data = measured.load(ISAS[isa])
    modes = [u.mode for u in spec.layers]
    trainable = [i for i, m in enumerate(modes) if m != "frozen"]
    lowest = min(trainable) if trainable else len(modes)
    fwd = bin_ = bw = 0
    mac_only = 0.0
    for i, layer in enumerate(model.layers):
        macs = int(table.macs(i))
        fwd += macs
        mac_only += macs * instructions_per_mac(layer.op, "forward", batch, isa)
        if i > lowest:
            bin_ += macs
            mac_only += macs * instructions_per_mac(layer.op, "backward_input", batch, isa)
        if modes[i] in ("full", "channels"):
            rows = layer.channels if modes[i] == "full" else len(spec.layers[i].channels)
            share = macs * rows // max(layer.channels, 1)
            bw += share
            mac_only += share * instructions_per_mac(layer.op, "backward_weight", batch, isa)
    if not data.ops or not trainable:
        return TaskWork(fwd, bin_, bw, mac_only)
    kernels, other = _step_instructions(model, spec, table, data, batch, lowest, momentum)
    return TaskWork(fwd, bin_, bw, (kernels + other) / batch, other / batch)


def _step_instructions(model, spec, table, data, n, lowest, momentum) -> tuple[float, float]:
    """(MAC kernel, other) instructions of one step of n samples (train_step.c's order)."""
    from ftte.train.trainer import NativeConfig

    plan = NativeConfig(model, spec, n, momentum).plan
    kernels = other = 0.0

    def call(layer, i, direction, width):
        macs = int(table.macs(i)) * n
        cost = data.kernel_call(layer.op, direction, width, layer.channels, macs / max(layer.channels, 1))
        if cost is None:  # an operator without slices measured: per MAC only
            cost = macs * width / layer.channels * (data.per_mac(layer.op, direction, n) or IPM_DEFAULT)
        return cost

    def in_place(i):
        return i > 0 and model.layers[i].op in ("relu", "relu6", "flatten")

    sizes = [(n * int(np.prod(layer.in_shape)), n * int(np.prod(layer.out_shape))) for layer in model.layers]
    # forward
    for i, layer in enumerate(model.layers):
        update, size_in, size_out = spec.layers[i], *sizes[i]
        aux = plan.aux_offset[i] >= 0
        if layer.has_weights:
            runs = _runs(layer, update)
            if update.mode == "channels" and layer.op in ONE_PASS:  # one pass, every row
                kernels += call(layer, i, "forward", layer.channels)
            else:
                kernels += sum(call(layer, i, "forward", w) for _, w in runs)
        elif layer.op in ("relu", "relu6"):
            other += data.elementwise(layer.op, size_out)
            if aux:
                other += data.elementwise(f"{layer.op}_mask", size_out)
        elif layer.op == "max_pool2d":
            other += data.pool("forward", size_out, size_in)
    # loss
    other += data.elementwise("cross_entropy", n * model.layers[-1].out_shape[2])
    # backward, each layer updated after its gradients
    for i in range(len(model.layers) - 1, lowest - 1, -1):
        layer, update, (size_in, size_out) = model.layers[i], spec.layers[i], sizes[i]
        if layer.has_weights:
            runs = _runs(layer, update)
            rows = sum(w for t, w in runs if t)
            bias = layer.channels if update.mode != "frozen" and layer.bias is not None else 0
            grad = rows * int(table.row_length(i)) + bias
            if grad:
                other += data.elementwise("zero", grad)
                if bias:
                    other += data.bias_backward(size_out // layer.channels, layer.channels)
                if update.mode == "channels" and layer.op in ("conv1d", "conv2d"):
                    # one call, the trainable channels 4 per tile wherever they are, the rest alone
                    kernels += (rows // 4) * call(layer, i, "backward_weight", 4) \
                        + (rows % 4) * call(layer, i, "backward_weight", 1)
                else:
                    kernels += sum(call(layer, i, "backward_weight", w) for t, w in runs if t)
            if i > lowest:
                other += data.elementwise("zero", size_in)
                if update.mode == "channels" and layer.op in ONE_PASS:
                    kernels += call(layer, i, "backward_input", layer.channels)
                else:
                    kernels += sum(call(layer, i, "backward_input", w) for _, w in runs)
            if grad:
                other += data.elementwise("sgd_momentum" if momentum else "sgd", grad)
        elif i > lowest:
            if not in_place(i):
                other += data.elementwise("zero", size_in)
            if layer.op in ("relu", "relu6"):
                other += data.elementwise("masked_backward" if plan.aux_offset[i] >= 0 else "relu_backward", size_out)
            elif layer.op == "max_pool2d":
                other += data.pool("backward", size_out, size_in)
    return kernels, other
