#!/usr/bin/env python3
"""Why chapter 5's notebook trains a network in the cell that builds it: a minimal reproduction.

    scripts/evcxr_tensor_ids.py            # static linking (evcxr's default)
    scripts/evcxr_tensor_ids.py --dylib    # evcxr's `:allow_static_linking 0`, the would-be fix

Runs four cells with the evcxr kernel (scripts/install-kernel.sh), depending on candle-core only:
a Var made in one cell, a tensor and a backward pass in the next, and the same two in one cell.
evcxr compiles every cell into a library of its own, which links its own copy of candle; candle
numbers tensors with a counter (its TensorId), so each cell's copy starts again at 1 and the
gradient of the Var is silently wrong. Printed with evcxr 0.22 and rustc 1.95 (Appendix B):

    cell 2: w is tensor TensorId(1)
    cell 3: a is tensor TensorId(1)
    cell 3: dy/dw = Some(Ok([6.0, 8.0, 10.0])) (should be [5, 6, 7])
    one cell: dy/dw = Some(Ok([5.0, 6.0, 7.0]))

evcxr's remedy, `:allow_static_linking 0`, builds every dependency as a shared library so that
one copy of candle serves all cells. With rustc 1.95 it stops at the first dependency: "only
metadata stub found for `dylib` dependency `core`" (the standard library now ships its metadata
beside its shared object, which evcxr 0.22 does not expect). The first run compiles candle-core
(a few minutes).
"""
import os
import sys
import tempfile

import nbclient
import nbformat

CELLS = [
    ':dep candle-core = { version = "=0.11.1", default-features = false }\nuse candle_core::{Device, Tensor, Var};',
    'let w = Var::new(&[1.0f32, 2.0, 3.0], &Device::Cpu)?;\n'
    'println!("cell 2: w is tensor {:?}", w.as_tensor().id());',
    'let a = Tensor::new(&[5.0f32, 6.0, 7.0], &Device::Cpu)?;\n'
    'println!("cell 3: a is tensor {:?}", a.id());\n'
    'let y = (w.as_tensor() * &a)?.sum_all()?;\n'
    'let grads = y.backward()?;\n'
    'println!("cell 3: dy/dw = {:?} (should be [5, 6, 7])", grads.get(w.as_tensor()).map(|g| g.to_vec1::<f32>()));',
    'let w2 = Var::new(&[1.0f32, 2.0, 3.0], &Device::Cpu)?;\n'
    'let a2 = Tensor::new(&[5.0f32, 6.0, 7.0], &Device::Cpu)?;\n'
    'let y2 = (w2.as_tensor() * &a2)?.sum_all()?;\n'
    'println!("one cell: dy/dw = {:?}", y2.backward()?.get(w2.as_tensor()).map(|g| g.to_vec1::<f32>()));',
]


def main():
    cells = list(CELLS)
    if "--dylib" in sys.argv[1:]:
        cells[0] = ":allow_static_linking 0\n" + cells[0]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    with tempfile.TemporaryDirectory(prefix="evcxr-ids-") as tmp:
        os.environ["EVCXR_TMPDIR"] = tmp
        try:
            nbclient.NotebookClient(nb, kernel_name="rust", startup_timeout=600, timeout=1800).execute()
        except nbclient.exceptions.CellExecutionError as error:
            print(str(error).strip().splitlines()[-1])
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                print(output["text"], end="")


if __name__ == "__main__":
    main()
