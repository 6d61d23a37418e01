"""Compute backends: the networks in torch, and the C kernels that run them on the CPU.

`network` holds the two autoencoders (torch only) and chooses the LSTM path by
device: cuDNN's ``nn.LSTM`` on CUDA, the C kernels (`kernels`, built from
``kernels.c`` at install) through `fused` (training) and `recurrence`
(inference) on the CPU. `parallel` runs inference chunks on every core.
"""
