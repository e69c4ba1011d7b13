"""A CPU stand-in for Triton (see ../README.md): jit, cdiv,
next_power_of_2, and kernel launches over a grid, run in order."""

from . import language  # noqa: F401


class _Kernel:
    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args, **kwargs):
        # A jit function called from a kernel: plain Python.
        return self.fn(*args, **kwargs)

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            g = grid(kwargs) if callable(grid) else grid
            g = tuple(g) + (1,) * (3 - len(g))
            wrapped = [language._wrap(a) for a in args]
            for z in range(g[2]):
                for y in range(g[1]):
                    for x in range(g[0]):
                        language._PID[:] = [x, y, z]
                        self.fn(*wrapped, **kwargs)
        return launch


def jit(fn=None, **_):
    if fn is None:
        return lambda f: _Kernel(f)
    return _Kernel(fn)


def cdiv(a, b):
    return (a + b - 1) // b


def next_power_of_2(n):
    p = 1
    while p < n:
        p *= 2
    return p
