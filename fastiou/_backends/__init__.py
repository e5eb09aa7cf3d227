"""Backend adapters, all with the same functions and arguments.

``cpp`` is the extension module fastiou._C itself; ``numba_cpu`` mirrors it in Numba;
``cuda_gpu`` and ``cupy_gpu`` launch the kernels of csrc/kernels/ through fastiou._C_cuda and
through NVRTC. The functions (arrays are numpy arrays on the host, DeviceArray on the GPU;
outputs are preallocated by fastiou/_dispatch.py's caller and written in place):

    box_pairwise(boxes1 (B,N,4), boxes2 (B,M,4), out (B,N,M), mode, fmt, eps)
    box_aligned(boxes1 (N,4), boxes2 (N,4), out (N,), mode, fmt, eps)
    box_area(boxes (N,4), out (N,), fmt)
    box_convert(boxes (N,4), out (N,4), in_fmt, out_fmt)
    masks_to_boxes(masks uint8 (N,H,W), out float32 (N,4))

GPU functions also take ``stream=`` (the caller's current stream) and never synchronise.
"""
