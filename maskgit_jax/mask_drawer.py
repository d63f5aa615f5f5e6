"""Draw an inpainting mask by hand in a notebook (Jupyter or Colab): paint over what to regenerate.

    drawer = MaskDrawer(picture)      # the last expression of a cell shows the canvas
    ...                               # paint with the mouse
    model.inpaint(picture, drawer.known).image

The canvas is an ipycanvas widget (``pip install ipycanvas``; on Colab call
``google.colab.output.enable_custom_widget_manager()`` first). The mask itself lives here, in
NumPy, so ``paint`` draws the same strokes from code (and the widget is only needed to show it).
"""

import numpy as np

STROKE_STYLE = "rgba(255, 0, 0, 0.5)"  # how painted pixels look on the canvas


class MaskDrawer:
    """A picture to paint on; ``known`` is the mask to inpaint with (False where painted).

    picture: uint8 (H, W, 3). brush_radius: in picture pixels (default: 1/20 of the shorter side).
    scale: canvas pixels per picture pixel (default: the picture shown about 384 pixels wide).
    """

    def __init__(self, picture: np.ndarray, brush_radius: float | None = None,
                 scale: int | None = None):
        self.picture = np.asarray(picture)
        if self.picture.dtype != np.uint8 or self.picture.ndim != 3 or self.picture.shape[2] != 3:
            raise ValueError(f"MaskDrawer: expected a uint8 (H, W, 3) picture, got "
                             f"{self.picture.dtype} {self.picture.shape}")
        h, w = self.picture.shape[:2]
        self.radius = float(brush_radius or max(2.0, min(h, w) / 20))
        self.scale = int(scale or max(1, round(384 / w)))
        self.missing = np.zeros((h, w), bool)
        self._canvas = None
        self._last = None  # the previous point of the stroke being painted

    @property
    def known(self) -> np.ndarray:
        """bool (H, W): True = keep this pixel, False = painted (to be regenerated)."""
        return ~self.missing

    def paint(self, x0: float, y0: float, x1: float | None = None, y1: float | None = None) -> None:
        """Paints a brush stroke from (x0, y0) to (x1, y1) (a dot without the end), in picture
        pixels: every pixel whose centre lies within the brush radius of the segment."""
        x1, y1 = (x0, y0) if x1 is None else (x1, y1)
        h, w = self.missing.shape
        ys, xs = np.mgrid[0:h, 0:w] + 0.5
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        t = 0.0 if length2 == 0 else np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0, 1)
        self.missing |= (xs - x0 - t * dx) ** 2 + (ys - y0 - t * dy) ** 2 <= self.radius ** 2
        if self._canvas is not None:
            self._canvas.stroke_line(x0 * self.scale, y0 * self.scale, x1 * self.scale, y1 * self.scale)

    def clear(self) -> None:
        """Forgets every stroke."""
        self.missing[:] = False
        if self._canvas is not None:
            self._show_picture()

    # --- the widget ----------------------------------------------------------------------------

    @property
    def widget(self):
        """The ipycanvas Canvas that shows the picture and takes mouse strokes."""
        if self._canvas is None:
            try:
                from ipycanvas import Canvas
            except ImportError:
                raise ImportError("drawing a mask needs ipycanvas: pip install ipycanvas") from None
            h, w = self.missing.shape
            canvas = Canvas(width=w * self.scale, height=h * self.scale)
            canvas.stroke_style = STROKE_STYLE
            canvas.line_width = 2 * self.radius * self.scale
            canvas.line_cap = "round"
            canvas.on_mouse_down(self._down)
            canvas.on_mouse_move(self._move)
            canvas.on_mouse_up(self._up)
            canvas.on_mouse_out(self._up)
            self._canvas = canvas
            self._show_picture()
        return self._canvas

    def _show_picture(self) -> None:
        """The picture, with the painted pixels tinted red."""
        tinted = np.where(self.missing[..., None],
                          (self.picture * 0.5 + np.array([127, 0, 0])).astype(np.uint8), self.picture)
        self._canvas.put_image_data(tinted.repeat(self.scale, axis=0).repeat(self.scale, axis=1), 0, 0)

    def _down(self, x: float, y: float) -> None:
        self._last = (x / self.scale, y / self.scale)
        self.paint(*self._last)

    def _move(self, x: float, y: float) -> None:
        if self._last is not None:
            point = (x / self.scale, y / self.scale)
            self.paint(*self._last, *point)
            self._last = point

    def _up(self, x: float, y: float) -> None:
        self._last = None

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.widget)
