"""Convert a Keras model (.keras or .h5) into an FTTE model directory and firmware C source.

Writes manifest.json + weights.npz (FTTE's model format, read by `ftte plan`) and
ftte_model_data.h/.c (the weights as const arrays that stay in flash, the layer table and
FTTE_MODEL_LAYOUT_HASH). Then runs the converted model on the C kernels and checks its outputs
against Keras on random inputs. Needs TensorFlow (pip install 'ftte[tensorflow]').
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ftte.model.io import save_model, write_c_source

CHECK_TOLERANCE = 1e-4  # relative to the largest output; float32 parity is ~1e-6


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="Keras model file (.keras or .h5)")
    parser.add_argument("-o", "--output", default="build", help="output directory (default build/)")
    parser.add_argument("--name", help="model name (default: the Keras model's name)")
    parser.add_argument("--no-check", action="store_true", help="skip the C-vs-Keras output check")


def _layers_table(conversion) -> Table:
    table = Table(title=f"{conversion.model.name}: Keras layers -> FTTE layers")
    for column in ("Keras layer", "FTTE layers", "output", "params"):
        table.add_column(column, justify="right" if column == "params" else "left")
    by_name = {layer.name: layer for layer in conversion.model.layers}
    for step in conversion.steps:
        layers = [by_name[n] for n in step.ftte_layers]
        shape = "x".join(map(str, layers[-1].out_shape)) if layers else ""
        params = sum(a.size for layer in layers for a in (layer.weights, layer.bias) if a is not None)
        table.add_row(f"{step.keras_name} ({step.keras_class})",
                      ", ".join(f"{layer.op}" for layer in layers) or "-", shape, f"{params:,}" if params else "")
    return table


def run(args: argparse.Namespace) -> int:
    try:
        from ftte.keras import compare_outputs, convert_keras, load_keras  # noqa: PLC0415
        keras_model = load_keras(args.source)
    except ImportError as error:
        print(f"ftte convert: error: needs TensorFlow/Keras ({error}); pip install 'ftte[tensorflow]'",
              file=sys.stderr)
        return 2
    conversion = convert_keras(keras_model, args.name, source=str(args.source))
    output = Path(args.output)
    data = save_model(conversion.model, output)
    header, source = write_c_source(conversion.model, output, origin=Path(args.source).name)
    console = Console()
    console.print(_layers_table(conversion))
    for note in conversion.notes:
        console.print(f"  note: {note}")
    console.print(f"{data['parameters']:,} parameters ({data['parameter_bytes']:,} B), layout hash "
                  f"{data['layout_hash']}; wrote {output / 'manifest.json'}, {output / 'weights.npz'}, "
                  f"{header.name}, {source.name}")
    if not args.no_check:
        error = compare_outputs(conversion, keras_model)
        what = "probabilities" if conversion.dropped_softmax else "logits"
        console.print(f"check: C kernels vs Keras on 8 random inputs, largest {what} difference "
                      f"{error:.1e} of the largest output")
        if error > CHECK_TOLERANCE:
            console.print(f"[red]conversion check failed[/]: above {CHECK_TOLERANCE:.0e}")
            return 1
    console.print(f"next: ftte plan {output} --budget 256KB")
    return 0
