"""How many threads the numerical libraries (numpy's BLAS, scipy, scikit-learn's OpenMP) may use.

On a few thousand customers their threads spend more CPU time waiting for each other than computing: the CLV
step on the default sample used 16.3 CPU seconds with them and 13.1 on one thread, in the same wall time. On large
data they pay off. The embedded engine follows the same rule for its own threads (``SMALL_INPUT_BYTES``).
"""

from __future__ import annotations

PARALLEL_ROWS = 200_000  # below this many rows (customers, texts) the numerical libraries run on one thread
SMALL_INPUT_BYTES = 64 * 2**20  # below this much input data, one thread (the engine's rule and the kernels')


def threads_for(rows: int):
    """A context manager that keeps BLAS and OpenMP to one thread while ``rows`` < :data:`PARALLEL_ROWS`.

    >>> with threads_for(10):
    ...     pass
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1 if rows < PARALLEL_ROWS else None)


def by_size(rows_of):
    """Decorator: run the function under :func:`threads_for` of ``rows_of(*args, **kwargs)``.

    >>> @by_size(lambda values: len(values))
    ... def total(values):
    ...     return sum(values)
    >>> total([1, 2, 3])
    6
    """
    import functools

    def decorate(func):
        @functools.wraps(func)
        def run(*args, **kwargs):
            with threads_for(rows_of(*args, **kwargs)):
                return func(*args, **kwargs)
        return run
    return decorate


NUMERIC_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def kernel_thread_env(data_dir, small_bytes: int | None = None) -> dict[str, str]:
    """Environment for a notebook kernel: numerical libraries on one thread while the data's staged tables (or, before
    step 01 has staged them, its raw files) are smaller than :data:`SMALL_INPUT_BYTES`. OpenBLAS workers
    otherwise keep spinning after every call: the seven default notebooks used about 5 CPU seconds more. A variable
    the user has set is left alone.

    >>> import tempfile
    >>> kernel_thread_env(tempfile.mkdtemp())["OPENBLAS_NUM_THREADS"]
    '1'
    """
    import os
    from pathlib import Path

    root = Path(data_dir)
    staged = root / "processed" / "staged"
    folder = staged if staged.is_dir() else root / "raw"
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.is_dir() else 0
    if size >= (SMALL_INPUT_BYTES if small_bytes is None else small_bytes):
        return {}
    return {name: "1" for name in NUMERIC_THREAD_VARIABLES if name not in os.environ}
