"""The package's only matplotlib import: a figure context and the few helpers every plot shares.

An experiment's ``plot(numbers, path)`` opens ``with figure(path, ...) as axes:``
and draws on the axes it is given; the figure is saved atomically (Agg backend)
and closed when the block ends, and closed without saving if the block fails.
"""

import contextlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..core.storage import write_atomic  # noqa: E402

NAIVE_STYLE = {"color": "0.4", "linestyle": "--", "linewidth": 1.0}


@contextlib.contextmanager
def figure(path, rows=1, cols=1, size=(6.5, 4.2), **subplot_kw):
    """Yield the axes of a new figure (one Axes, or an array of them); save it to ``path`` after."""
    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=True, **subplot_kw)
    try:
        yield axes
        fig.tight_layout()
        write_atomic(path, lambda handle: fig.savefig(handle, format="png", dpi=110))   # no partial file
    finally:
        plt.close(fig)


def colours(count):
    """``count`` colours along the viridis map."""
    return plt.cm.viridis(np.linspace(0, 1, count))


def naive_line(axis, value, label="naive (1/12)"):
    axis.axhline(value, label=label, **NAIVE_STYLE)


def loss_axes(axis, title):
    """Log–log L/p against evaluation p, as in the paper."""
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("evaluation p (feature probability)")
    axis.set_ylabel("L/p (loss per feature)")
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)


def mean_band(axis, x, per_seed, label, marker=".", **style):
    """The mean over seeds (rows of ``per_seed``) as a line, min–max across seeds as a band."""
    values = np.asarray(per_seed, dtype=float).reshape(-1, len(x))            # (seeds, points)
    line, = axis.plot(x, values.mean(axis=0), marker=marker, label=label, **style)
    if values.shape[0] > 1:
        axis.fill_between(x, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.25,
                          linewidth=0)
    return line
