"""Render one talking-portrait frame from a still image and per-frame controls.

Only a region of interest around the head is re-rendered each frame: a smooth
displacement field (``cv2.remap``) drops the lower lip, jaw and chin by the mouth
opening and nudges the head by the drift offset; a soft dark ellipse fills the gap
between the lips; during blinks a lid patch (skin sampled just above each eye) slides
down over the eye. Every displacement field is zero at the region's edges, so the rest
of the frame is the untouched portrait.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .face import Box, FaceLayout


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / max(e1 - e0, 1e-6), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class FrameControls:
    """The per-frame inputs of :meth:`PortraitRenderer.render`.

    Attributes:
        opening: mouth opening 0..1.
        width: mouth width cue -1..1 (positive = wider).
        blink: eyelid closure 0..1.
        dx, dy: head offset in pixels.
    """

    opening: float = 0.0
    width: float = 0.0
    blink: float = 0.0
    dx: float = 0.0
    dy: float = 0.0


class PortraitRenderer:
    """Precomputes the fields for one portrait; :meth:`render` makes a frame from controls.

    Memory is a few float32 arrays the size of the head region, independent of clip length.
    """

    def __init__(self, image: np.ndarray, layout: FaceLayout, *, mouth_strength: float = 1.0):
        """
        Args:
            image: uint8 ``[H, W, 3]`` RGB still portrait (kept by reference, not modified).
            layout: the face to animate, in ``image`` pixels.
            mouth_strength: scales the largest jaw drop (1.0 = about 11 % of face height).
        """
        self._image = image
        self._layout = layout
        face = layout.face
        H, W = image.shape[:2]
        fw, fh = float(face.w), float(face.h)
        mx, my = layout.mouth_center
        self._x0 = int(max(0, np.floor(face.x - 0.9 * fw)))
        self._x1 = int(min(W, np.ceil(face.x + 1.9 * fw)))
        self._y0 = int(max(0, np.floor(face.y - 0.9 * fh)))
        self._y1 = int(min(H, np.ceil(layout.chin_y + 0.9 * fh)))
        gy, gx = np.mgrid[self._y0:self._y1, self._x0:self._x1].astype(np.float32)
        self._gx_local = gx - self._x0
        self._gy_local = gy - self._y0
        self._max_drop = 0.11 * fh * max(0.0, float(mouth_strength))
        self._mouth = (mx - self._x0, my - self._y0)
        self._mouth_hw = float(layout.mouth_half_width)
        self._jaw = self._jaw_field(gx, gy, mx, my, layout.chin_y, fw, fh)
        self._widen = self._width_field(gx, gy, mx, my, fh)
        self._head = self._head_field(gx, gy, face)
        self._interior = self._interior_colour(image, face)
        self._eyes = tuple(self._eye_setup(image, eye) for eye in layout.eyes)

    # -- precomputed fields ----------------------------------------------------------
    def _jaw_field(self, gx, gy, mx, my, chin_y, fw, fh) -> np.ndarray:
        """0..1 weight of the downward jaw/lower-lip displacement."""
        ramp = max(1.2 * self._max_drop, 0.04 * fh, 1.5)
        rise = _smoothstep(my - 0.15 * ramp, my + ramp, gy)
        fall = 1.0 - _smoothstep(chin_y, chin_y + 0.5 * fh, gy)
        ax = np.abs(gx - mx)
        hw = self._mouth_hw_for(fw)
        narrow = 1.0 - _smoothstep(0.15 * hw, 1.2 * hw, ax)  # lips: centre opens, corners stay
        wide = 1.0 - _smoothstep(0.32 * fw, 0.62 * fw, ax)  # jaw: chin moves as a whole
        blend = _smoothstep(my, my + 0.22 * fh, gy)
        return (rise * fall * (narrow * (1.0 - blend) + wide * blend)).astype(np.float32)

    def _mouth_hw_for(self, fw: float) -> float:
        return self._mouth_hw if self._mouth_hw > 0 else 0.21 * fw

    def _width_field(self, gx, gy, mx, my, fh) -> np.ndarray:
        """Horizontal stretch about the mouth centre (px of shift per unit of width cue)."""
        sx, sy = 1.4 * self._mouth_hw, 0.09 * fh
        g = np.exp(-0.5 * (((gx - mx) / sx) ** 2 + ((gy - my) / sy) ** 2))
        return (0.10 * (gx - mx) * g).astype(np.float32)

    def _head_field(self, gx, gy, face: Box) -> np.ndarray:
        """0..1 weight of the head drift: 1 on the head, fading out around it."""
        cx, cy = face.center
        r = np.sqrt(((gx - cx) / (0.85 * face.w)) ** 2 + ((gy - cy) / (1.0 * face.h)) ** 2)
        return (1.0 - _smoothstep(0.8, 1.3, r)).astype(np.float32)

    @staticmethod
    def _interior_colour(image: np.ndarray, face: Box) -> np.ndarray:
        """Dark red-brown mouth interior, scaled to the face's skin tone."""
        x0, x1 = face.x + int(0.2 * face.w), face.x + int(0.8 * face.w)
        y0, y1 = face.y + int(0.45 * face.h), face.y + int(0.65 * face.h)
        patch = image[max(0, y0):max(y0 + 1, y1), max(0, x0):max(x0 + 1, x1)].reshape(-1, 3)
        skin = np.median(patch, axis=0).astype(np.float32) if patch.size else np.array([200, 150, 130], np.float32)
        return np.clip(0.32 * skin * np.array([1.0, 0.5, 0.5], np.float32), 10, 90)

    def _eye_setup(self, image: np.ndarray, eye: Box):
        """Clip an eye box to the image and build its closed-lid skin patch."""
        H, W = image.shape[:2]
        x0, y0 = max(0, eye.x), max(0, eye.y)
        x1, y1 = min(W, eye.x + eye.w), min(H, eye.y + eye.h)
        if x1 - x0 < 3 or y1 - y0 < 3:
            return None
        strip_h = max(2, int(round(0.35 * eye.h)))
        s0 = max(0, y0 - strip_h - max(1, eye.h // 10))
        s1 = max(s0 + 1, y0 - max(1, eye.h // 10))
        strip = image[s0:s1, x0:x1].astype(np.float32)
        lid = cv2.resize(strip, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        lid = cv2.GaussianBlur(lid, (0, 0), sigmaX=max(0.6, 0.05 * eye.w), sigmaY=max(0.8, 0.15 * eye.h))
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        cx, cy = eye.center
        r = np.sqrt(((xx - cx) / (0.55 * eye.w)) ** 2 + ((yy - cy) / (0.62 * eye.h)) ** 2)
        ellipse = (1.0 - _smoothstep(0.75, 1.0, r)).astype(np.float32)
        return (x0, y0, x1, y1, lid, ellipse, yy - y0)

    # -- per frame -----------------------------------------------------------------------
    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the frames, px."""
        return self._image.shape[1], self._image.shape[0]

    def _blinked_source(self, closure: float) -> np.ndarray:
        roi = self._image[self._y0:self._y1, self._x0:self._x1]
        if closure <= 0.02:
            return roi
        out = roi.copy()
        for setup in self._eyes:
            if setup is None:
                continue
            x0, y0, x1, y1, lid, ellipse, rows = setup
            h = float(y1 - y0)
            edge = closure * (0.8 * h) + 0.1 * h  # lid edge, rows below the eye-box top
            soft = max(0.8, 0.08 * h)
            cover = 1.0 - _smoothstep(edge - soft, edge + soft, rows)
            alpha = (ellipse * cover * min(1.0, closure * 1.6))[..., None]
            lash = np.exp(-0.5 * ((rows - edge) / max(0.7, 0.07 * h)) ** 2)[..., None]
            lid_now = lid * (1.0 - 0.45 * lash * min(1.0, closure * 1.4))
            sl = (slice(y0 - self._y0, y1 - self._y0), slice(x0 - self._x0, x1 - self._x0))
            base = out[sl].astype(np.float32)
            out[sl] = np.clip(base * (1.0 - alpha) + lid_now * alpha + 0.5, 0, 255).astype(np.uint8)
        return out

    def _paint_interior(self, roi: np.ndarray, drop: float, widen: float, dx: float, dy: float) -> None:
        if drop < 0.4:
            return
        mx, my = self._mouth
        a = self._mouth_hw * 0.82 * (1.0 + 0.10 * widen)
        b = 0.5 * drop
        ex, ey = mx + dx, my + dy + 0.5 * drop
        x0, x1 = int(max(0, np.floor(ex - a - 2))), int(min(roi.shape[1], np.ceil(ex + a + 3)))
        y0, y1 = int(max(0, np.floor(ey - b - 2))), int(min(roi.shape[0], np.ceil(ey + b + 3)))
        if x1 <= x0 or y1 <= y0:
            return
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        r = np.sqrt(((xx - ex) / a) ** 2 + ((yy - ey) / b) ** 2)
        alpha = np.clip((1.0 - r) * b / 1.2, 0.0, 1.0) * float(min(1.0, drop / 2.0))
        shade = 1.0 - 0.35 * np.clip(1.0 - r, 0.0, 1.0)
        colour = self._interior[None, None, :] * shade[..., None]
        part = roi[y0:y1, x0:x1].astype(np.float32)
        alpha = alpha[..., None]
        roi[y0:y1, x0:x1] = np.clip(part * (1.0 - alpha) + colour * alpha + 0.5, 0, 255).astype(np.uint8)

    def render(self, controls: FrameControls) -> np.ndarray:
        """Make one frame.

        Args:
            controls: :class:`FrameControls` for this frame.

        Returns:
            A new uint8 ``[H, W, 3]`` RGB frame, same size as the portrait.
        """
        opening = float(np.clip(controls.opening, 0.0, 1.0))
        widen = float(np.clip(controls.width, -1.0, 1.0)) * opening
        drop = self._max_drop * opening
        map_x = self._gx_local - (controls.dx * self._head + widen * self._widen)
        map_y = self._gy_local - (controls.dy * self._head + drop * self._jaw)
        src = self._blinked_source(float(controls.blink))
        roi = cv2.remap(src, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        self._paint_interior(roi, drop, widen, controls.dx, controls.dy)
        frame = self._image.copy()
        frame[self._y0:self._y1, self._x0:self._x1] = roi
        return frame
