"""triton.language on the CPU: tiles are torch tensors, pointers are a
flat tensor and a tile of offsets."""

import torch

float32 = torch.float32
float64 = torch.float64
int1 = torch.bool
int8 = torch.int8
int32 = torch.int32
int64 = torch.int64

_PID = [0, 0, 0]


def constexpr(x):
    return x


class _Tile(torch.Tensor):
    """An integer tile: // and % round toward zero, as Triton's do."""

    def __floordiv__(self, other):
        return _tile(torch.div(self.as_subclass(torch.Tensor), _plain(other), rounding_mode="trunc"))

    def __rfloordiv__(self, other):
        return _tile(torch.div(_plain(other), self.as_subclass(torch.Tensor), rounding_mode="trunc"))

    def __mod__(self, other):
        return _tile(torch.fmod(self.as_subclass(torch.Tensor), _plain(other)))

    def __rmod__(self, other):
        return _tile(torch.fmod(torch.as_tensor(_plain(other)), self.as_subclass(torch.Tensor)))

    def to(self, *args, **kwargs):
        return _tile(torch.Tensor.to(self.as_subclass(torch.Tensor), *args, **kwargs))


def _plain(x):
    return x.as_subclass(torch.Tensor) if isinstance(x, _Tile) else x


def _tile(t):
    if isinstance(t, torch.Tensor) and not t.is_floating_point() and t.dtype != torch.bool:
        return t.as_subclass(_Tile)
    return t


class _Ptr:
    def __init__(self, base, off):
        self.base, self.off = base, off

    def __add__(self, x):
        off = torch.as_tensor(_plain(self.off), dtype=torch.int64) + torch.as_tensor(_plain(x)).to(torch.int64)
        return _Ptr(self.base, off)

    __radd__ = __add__


def _wrap(a):
    if isinstance(a, torch.Tensor):
        if not a.is_contiguous():
            raise ValueError("the CPU Triton takes contiguous tensors")
        return _Ptr(a.view(-1), torch.tensor(0, dtype=torch.int64))
    return a


def program_id(axis):
    return _PID[axis]


def arange(lo, hi):
    return _tile(torch.arange(lo, hi, dtype=torch.int32))


def zeros(shape, dtype):
    return _tile(torch.zeros(shape, dtype=dtype))


def full(shape, value, dtype):
    return _tile(torch.full(shape, value, dtype=dtype))


def _bcast(*xs):
    ts = [torch.as_tensor(_plain(x)) for x in xs]
    return torch.broadcast_tensors(*ts)


def load(ptr, mask=None, other=0.0):
    off = torch.as_tensor(_plain(ptr.off))
    if mask is None:
        return _tile(ptr.base[off])
    off, m = _bcast(off, mask)
    safe = torch.where(m, off, torch.zeros_like(off))
    v = ptr.base[safe]
    return _tile(torch.where(m, v, torch.as_tensor(other, dtype=v.dtype)))


def store(ptr, val, mask=None):
    off = torch.as_tensor(_plain(ptr.off))
    if mask is None:
        mask = torch.ones_like(off, dtype=torch.bool)
    off, v, m = _bcast(off, val, mask)
    ptr.base[off[m]] = v[m].to(ptr.base.dtype)


def atomic_add(ptr, val, mask=None):
    off = torch.as_tensor(_plain(ptr.off))
    if mask is None:
        mask = torch.ones_like(off, dtype=torch.bool)
    off, v, m = _bcast(off, val, mask)
    ptr.base.index_put_((off[m],), v[m].to(ptr.base.dtype), accumulate=True)


def dot(a, b):
    return torch.matmul(_plain(a).float(), _plain(b).float())


def trans(x):
    return _plain(x).t()


def where(c, a, b):
    c, a, b = (torch.as_tensor(_plain(x)) for x in (c, a, b))
    dt = torch.promote_types(a.dtype, b.dtype)
    return _tile(torch.where(c, a.to(dt), b.to(dt)))


def maximum(a, b):
    a, b = _bcast(a, b)
    dt = torch.promote_types(a.dtype, b.dtype)
    return _tile(torch.maximum(a.to(dt), b.to(dt)))


def minimum(a, b):
    a, b = _bcast(a, b)
    dt = torch.promote_types(a.dtype, b.dtype)
    return _tile(torch.minimum(a.to(dt), b.to(dt)))


def sum(x, axis):
    return _tile(torch.sum(_plain(x), dim=axis))


def max(x, axis):
    return torch.amax(_plain(x), dim=axis)


def exp(x):
    return torch.exp(torch.as_tensor(_plain(x)).float())


def log(x):
    return torch.log(torch.as_tensor(_plain(x)).float())


def sin(x):
    return torch.sin(torch.as_tensor(_plain(x)).float())


def cos(x):
    return torch.cos(torch.as_tensor(_plain(x)).float())


def sigmoid(x):
    return torch.sigmoid(torch.as_tensor(_plain(x)).float())


def abs(x):
    return _tile(torch.abs(torch.as_tensor(_plain(x))))
