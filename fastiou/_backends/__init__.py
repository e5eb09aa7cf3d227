"""Backend adapters: ``cpp`` (the extension fastiou._C itself), ``numba`` (numba_cpu, one
module per op), ``cuda`` (cuda_gpu, launching fastiou._C_cuda) and ``cupy`` (cupy_gpu, the
kernels of csrc/kernels/ through NVRTC).

Every backend offers the functions declared in interface.py, with the same parameters;
fastiou/_dispatch.py chooses one and checks each call against the declaration.
"""
