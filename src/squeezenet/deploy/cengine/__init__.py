"""A dependency-free C99 engine for SqueezeNet: `squeezenet export WEIGHTS --format c --out DIR`.

`graph` lowers a SqueezeNet to the ops the C kernels run, `planner` lays its tensors into one arena, `quantize`
turns weights and calibrated activation ranges into the integer parameters, `reference` executes the graph in
float and in exactly the C's integer arithmetic, `codegen` writes the C files and `targets` builds and runs them
on this machine and on a Cortex-M4 under QEMU. The hand-written kernels are `c/kernels.c`.
"""
