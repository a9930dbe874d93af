"""Writes ftte_model_data.h and ftte_model_data.c here: the model the firmware compiles in.

The committed files are the digits MLP reference model (`ftte.zoo` digits_mlp, seed 0), written
by ftte.model.io.write_c_source: its layer table (the layout, whose hash HELLO announces) and its
initial weights (which PROVISION replaces at run time). Run this after a change to the model or
to write_c_source; tests/test_native_board.py fails while the committed files are stale.

    python firmware/core/model/generate.py              # the digits MLP, here
    python firmware/core/model/generate.py MODEL_DIR    # a converted model (`ftte convert`)

The host-built native board (ftte.link.native) writes the source of whatever model a run uses
into its build directory instead, so `ftte run --emulated` works for any model.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORIGIN = "ftte.zoo digits_mlp (seed 0)"


def main(argv: list[str]) -> int:
    from ftte.model.io import load_model, write_c_source
    from ftte.zoo import reference_model

    if argv:
        model, origin = load_model(argv[0]), argv[0]
    else:
        model, origin = reference_model("digits_mlp").build(0), ORIGIN
    for path in write_c_source(model, HERE, origin=origin):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
