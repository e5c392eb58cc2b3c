"""nutpie's sampler on a PyMC model compiled by PyTensor's default (C) back end.

``nutpie.compile_pymc_model(model, backend="numba")`` translates the whole model to
numba and compiles it with LLVM: on a small machine that takes minutes for this
package's models, mostly in code generation (a trivial 10-parameter model already
takes ~40 s on 2 cores, and the fused evidence kernel of
:mod:`alliancetraj.models.pymc_kernel` is compiled again inside it). The collapsed
mixture's graph is tiny (one fused Op plus a few dozen scalar and ``(dyads, 4)``
element-wise nodes), so PyTensor's C back end compiles it in seconds (its modules are
cached on disk), and nearly all the time of a logp-and-gradient call is spent in the
kernel, which is already compiled (numba's on-disk cache) and releases the GIL. Here
that C-compiled function is handed to nutpie's Rust sampler as a Python callback
(``nutpie.compiled_pyfunc.from_pyfunc``, the route nutpie itself takes for its JAX
back end): nutpie's adaptation and its threads (one chain per thread, the kernels of
different chains running in parallel), without the numba compilation.

This module imports PyTensor, PyMC and nutpie: import it only where they are needed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["compile_pymc_model_c", "has_pyfunc"]


def has_pyfunc() -> bool:
    """Whether the installed nutpie accepts Python logp callbacks (``from_pyfunc``)."""
    try:
        from nutpie.compiled_pyfunc import from_pyfunc  # noqa: F401
    except ImportError:
        return False
    return True


def compile_pymc_model_c(model, var_names: Sequence[str] | None = None):
    """A nutpie ``CompiledModel`` of ``model`` with PyTensor's default back end.

    Parameters
    ----------
    model : pymc.Model
    var_names : sequence of str, optional
        Variables to store (free variables and deterministics); default all of them,
        as ``nutpie.compile_pymc_model``.

    Returns
    -------
    nutpie CompiledModel
        For ``nutpie.sample``. Each chain gets its own copy of the compiled functions
        (PyTensor functions hold their storage and are not thread-safe).
    """
    import pytensor
    import pytensor.tensor as pt
    from nutpie.compiled_pyfunc import from_pyfunc
    from pymc.initial_point import make_initial_point_fn
    from pymc.pytensorf import compile as compile_pymc

    free = list(model.free_RVs)
    value_vars = [model.rvs_to_values[rv] for rv in free]
    point = model.initial_point()
    shapes = [tuple(np.shape(point[v.name])) for v in value_vars]
    sizes = [int(np.prod(s, dtype=int)) for s in shapes]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    n_dim = int(offsets[-1])
    x = pt.TensorType("float64", shape=(n_dim,))("unconstrained_point")
    replace = {v: x[offsets[i]:offsets[i + 1]].reshape(shapes[i]).astype(v.dtype)
               for i, v in enumerate(value_vars)}

    logp = model.logp()
    grads = pytensor.grad(logp, value_vars)
    grad = pt.concatenate([pt.as_tensor(g).ravel() for g in grads])
    logp, grad = pytensor.clone_replace([logp, grad], replace)
    with model:
        logp_fn = compile_pymc([x], [logp, grad])

    names = [v.name for v in [*free, *model.deterministics]] if var_names is None \
        else list(var_names)
    outs = model.replace_rvs_by_values([model[name] for name in names])
    outs = pytensor.clone_replace(outs, replace)
    with model:
        expand_fn = compile_pymc([x], outs, on_unused_input="ignore")
    x0 = np.concatenate([np.ravel(point[v.name]) for v in value_vars]).astype(float)
    out_shapes = [tuple(np.shape(v)) for v in expand_fn(x0)]

    init_fn = make_initial_point_fn(model=model, jitter_rvs=set(free), return_transformed=True)
    # nutpie asks for initial points from its chain threads; one compiled PyTensor
    # function shared by two threads can read the other's half-filled storage (seen as a
    # None input of the jitter node), so the calls are serialised.
    init_lock = threading.Lock()

    def make_initial_point(seed):
        with init_lock:
            p = init_fn(seed)
        return np.concatenate([np.ravel(p[v.name]) for v in value_vars]).astype(float)

    def make_logp_fn():
        fn = logp_fn.copy()

        def logp_and_grad(x_, **_: Any):
            val, g = fn(x_)
            return float(val), np.array(g, dtype=np.float64, order="C")

        return logp_and_grad

    def make_expand_fn(seed1, seed2, chain):
        fn = expand_fn.copy()

        def expand(x_, **_: Any):
            return {name: np.array(v, dtype=np.float64, order="C").reshape(shape)
                    for name, v, shape in zip(names, fn(x_), out_shapes, strict=True)}

        return expand

    dims = {name: tuple(model.named_vars_to_dims[name]) for name in names
            if name in model.named_vars_to_dims}
    used = {d for ds in dims.values() for d in ds}
    coords = {d: list(model.coords[d]) for d in used}
    return from_pyfunc(
        n_dim, make_logp_fn, make_expand_fn, [np.dtype("float64")] * len(names), out_shapes,
        names, coords=coords, dims=dims, make_initial_point_fn=make_initial_point,
    )
