"""One helper the chapter scripts share: save a figure, and the chapter's small copy with --figures."""

import io
import os


def save_figure(fig, path, figures_dir=None):
    """Save ``fig`` to ``path`` (dpi 100); with ``figures_dir`` also a small copy there (dpi 80, 32 colours,
    ≲ 80 KB: the PNGs committed in tutorial/figures/). Closes the figure."""
    import matplotlib.pyplot as plt
    from PIL import Image                  # Pillow comes with matplotlib

    fig.savefig(path, dpi=100)
    if figures_dir:
        os.makedirs(figures_dir, exist_ok=True)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        small = Image.open(buffer).convert("RGB").quantize(32, method=2, dither=0)
        small.save(os.path.join(figures_dir, os.path.basename(path)), optimize=True)
    plt.close(fig)
