"""Cameras around an object.

Convention (used everywhere in meshstyle): a camera looks along its local -Z axis with +Y up and +X to
the right (OpenGL/glTF). ``rotation`` is the 3x3 camera-to-world matrix whose columns are the camera's
right, up and backward axes in world coordinates; the world's up axis is +Y (glTF). Image row 0 is
the top of the picture; pixel centres sit at half-integer positions. ``fov`` is the vertical field of
view in degrees; pixels are square.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.errors import MeshstyleError

WORLD_UP = np.array([0.0, 1.0, 0.0])


@dataclass
class Camera:
    """A pinhole camera: ``position`` (3,) in world units, ``rotation`` (3, 3) camera-to-world,
    ``fov`` vertical field of view in degrees."""

    position: np.ndarray
    rotation: np.ndarray
    fov: float = 40.0

    def rays(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """Ray origins and unit directions, each (height * width, 3), through the pixel centres, row-major
        from the top-left pixel."""
        tan = math.tan(math.radians(self.fov) / 2)
        ys = (1 - (np.arange(height) + 0.5) / height * 2) * tan
        xs = ((np.arange(width) + 0.5) / width * 2 - 1) * tan * width / height
        gx, gy = np.meshgrid(xs, ys)
        local = np.stack([gx, gy, -np.ones_like(gx)], -1).reshape(-1, 3)
        dirs = local @ self.rotation.T
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        return np.broadcast_to(self.position, dirs.shape).copy(), dirs

    def pixel_size(self, depth: np.ndarray | float, height: int) -> np.ndarray | float:
        """World size of one pixel at ``depth`` (distance along the ray, approximately the z-depth
        near the image centre) for an image ``height`` px tall: ``2 depth tan(fov / 2) / height``."""
        return 2.0 * np.asarray(depth) * math.tan(math.radians(self.fov) / 2) / height


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = WORLD_UP) -> np.ndarray:
    """Camera-to-world rotation (3, 3) for a camera at ``eye`` looking at ``target``."""
    back = np.asarray(eye, float) - np.asarray(target, float)
    back /= np.linalg.norm(back)
    if abs(float(np.dot(back, up))) > 0.999:  # looking straight up or down: pick another up vector
        up = np.array([0.0, 0.0, -1.0]) if back[1] > 0 else np.array([0.0, 0.0, 1.0])
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(back, right), back], axis=1)


def fibonacci_directions(count: int, elevation: tuple[float, float] = (-30.0, 75.0), seed: int = 0) -> np.ndarray:
    """``count`` unit vectors spread evenly (Fibonacci lattice) over the band of the sphere between two
    elevations (degrees above the XZ plane), rotated about +Y by a seeded random angle. (count, 3)."""
    lo, hi = (math.sin(math.radians(e)) for e in elevation)
    k = np.arange(count) + 0.5
    y = lo + (hi - lo) * k / count
    r = np.sqrt(np.clip(1 - y * y, 0, 1))
    offset = np.random.default_rng(seed).uniform(0, 2 * math.pi)
    phi = offset + k * math.pi * (3 - math.sqrt(5))
    return np.stack([r * np.cos(phi), y, r * np.sin(phi)], -1)


def fit_to_points(camera: Camera, points: np.ndarray, margin: float = 0.05) -> Camera:
    """Move ``camera`` along its viewing axis so that ``points`` (P, 3) just fit in a square view with
    ``margin`` (a fraction of the half-width) to spare. Keeps position direction and rotation."""
    tan = math.tan(math.radians(camera.fov) / 2) * (1 - margin)
    local = (points - camera.position) @ camera.rotation      # camera coordinates, forward is -z
    ahead = -local[:, 2]
    # moving back by delta adds delta to every point's distance ahead; each point needs
    # ahead + delta >= max(|x|, |y|) / tan
    delta = float(np.max(np.maximum(np.abs(local[:, 0]), np.abs(local[:, 1])) / tan - ahead))
    backward = camera.rotation[:, 2]
    return Camera(camera.position + delta * backward, camera.rotation, camera.fov)


def check_camera_options(count: int, fov: float, distance: float, elevation: tuple[float, ...]) -> None:
    """Raise :class:`MeshstyleError` for a camera count < 1, a field of view outside 1..170 degrees, a
    distance factor < 1, or an elevation band that is not MIN,MAX within [-90, 90]."""
    if count < 1:
        raise MeshstyleError(f"--views must be >= 1, got {count}")
    if not 1 <= fov <= 170:
        raise MeshstyleError(f"--fov must be within 1..170 degrees, got {fov}")
    if not distance >= 1.0:
        raise MeshstyleError(f"--distance must be >= 1 (the object must fit in view), got {distance}")
    if len(elevation) != 2 or not -90 <= elevation[0] <= elevation[1] <= 90:
        raise MeshstyleError(f"--elevation must be MIN,MAX with -90 <= MIN <= MAX <= 90, got {elevation}")


def orbit_cameras(center: np.ndarray, radius: float, count: int, *, fov: float = 40.0, distance: float = 1.1,
                  elevation: tuple[float, float] = (-30.0, 75.0), seed: int = 0,
                  points: np.ndarray | None = None) -> list[Camera]:
    """Cameras on a sphere around a bounding sphere, looking at its centre.

    Args:
        center, radius: the object's bounding sphere.
        count: number of cameras (>= 1).
        fov: vertical field of view, degrees (1..170).
        distance: distance factor; 1 puts the camera where the bounding sphere just fills the view
            (``radius / sin(fov / 2)`` from the centre); larger values back off.
        elevation: (min, max) elevation band in degrees, within [-90, 90].
        seed: rotates the lattice; the same seed gives the same cameras.
        points: if given (P, 3), each camera is then moved along its axis so that these points just
            fill the view (:func:`fit_to_points`), and ``distance`` scales that fitted distance.

    Raises:
        MeshstyleError: out-of-range arguments.
    """
    check_camera_options(count, fov, distance, elevation)
    dist = distance * radius / math.sin(math.radians(fov) / 2)
    center = np.asarray(center, float)
    cams = []
    for d in fibonacci_directions(count, elevation, seed):
        eye = center + dist * d
        cam = Camera(position=eye, rotation=look_at(eye, center), fov=fov)
        if points is not None:
            cam = fit_to_points(cam, points)
            cam = Camera(center + (cam.position - center) * distance, cam.rotation, fov)
        cams.append(cam)
    return cams


def turntable_cameras(center: np.ndarray, radius: float, count: int, *, fov: float = 40.0, distance: float = 1.1,
                      elevation: float = 20.0, points: np.ndarray | None = None) -> list[Camera]:
    """``count`` cameras evenly around the +Y axis at one elevation (degrees), for previews. With
    ``points``, all cameras share the distance at which the points fit in every view."""
    dist = distance * radius / math.sin(math.radians(fov) / 2)
    e = math.radians(elevation)
    cams = []
    for k in range(count):
        a = 2 * math.pi * k / count
        eye = np.asarray(center, float) + dist * np.array([math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)])
        cams.append(Camera(position=eye, rotation=look_at(eye, center), fov=fov))
    if points is not None:
        fitted = [np.linalg.norm(fit_to_points(c, points).position - center) for c in cams]
        cams = [Camera(center + (c.position - center) * (max(fitted) / dist) * distance, c.rotation, fov) for c in cams]
    return cams
