"""Synthetic indoor scenes rendered with numpy: every task, no download.

Each sample is a room (floor, four walls, ceiling) holding a few boxes, spheres and vertical
cylinders, seen by a pinhole camera with a random height, pitch and yaw. One ray per pixel is
intersected with every surface (vectorised; each object only within its projected bounding box),
which gives, all from the same hits and so mutually consistent:

* ``img``: uint8 RGB; per-class colours with simple textures (checkered floor, striped walls and
  objects), Lambertian shading from the true normals under a random directional light, plus a
  little pixel noise;
* ``semseg``: class ids (0 floor, 1 wall, 2 ceiling, 3.. objects, see :func:`synthetic_classes`);
* ``depth``: metric z-depth (metres) in the camera frame, valid everywhere;
* ``normals``: unit surface normals in the camera frame (x right, y down, z forward), facing the
  camera;
* ``edge``: 1 on both sides of every boundary between two classes or two objects (the occlusion
  contours, where depth jumps), 0 elsewhere;
* ``saliency``: 1 on the objects (classes >= 3), 0 on the room;
* ``human_parts``: a part label per object pixel (1 top: surfaces facing up, 2 upper side,
  3 lower side: above or below the object's mid-height), 0 on the room.

Samples are deterministic: sample ``index`` of a dataset with ``seed`` draws everything from
``np.random.default_rng([seed, index])`` (a pair, not ``seed + index``, so that datasets with
seeds 0 and 1 share no scene).

Speed, one process on the 2-core development machine (shared), ``render_scene`` with all tasks:
41-52 images/s at 288 x 384 and 375-440 images/s at 96 x 128 (three runs of
``python tools/analysis_tools/benchmark_synthetic.py --shape 288 384``);
the training pipeline adds little (flip + packing: 51 samples/s at 288 x 384).
"""

import math
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ctal_mm.registry import DATASETS

from .base_multitask_dataset import BaseMultiTaskDataset

STRUCTURE_CLASSES = ('floor', 'wall', 'ceiling')
FLOOR, WALL, CEILING = 0, 1, 2
SHAPES = ('box', 'sphere', 'cylinder')
SIZE_VARIANTS = (('', 1.0), ('large ', 1.45), ('small ', 0.7))
PART_CLASSES = ('background', 'top', 'upper side', 'lower side')
PART_PALETTE = [[0, 0, 0], [240, 200, 40], [40, 160, 240], [200, 60, 160]]
DEFAULT_NUM_CLASSES = 9  # floor, wall, ceiling + 6 object classes
SYNTHETIC_TASKS = (
    'semseg',
    'depth',
    'normals',
    'edge',
    'saliency',
    'human_parts',
)
SYNTHETIC_TASK_KINDS = dict(
    semseg='segmentation',
    depth='depth',
    normals='normals',
    edge='edge',
    saliency='saliency',
    human_parts='segmentation',
)
FOCAL_PER_WIDTH = (
    0.9  # focal length / image width: a 58 degree horizontal field of view
)


def synthetic_classes(num_classes: int) -> Tuple[str, ...]:
    """Class names: floor, wall, ceiling, then objects by shape and size variant."""
    if num_classes < 4:
        raise ValueError(
            f'num_classes={num_classes}; the synthetic scenes need at least 4 '
            '(floor, wall, ceiling and one object class).'
        )
    names = list(STRUCTURE_CLASSES)
    for k in range(num_classes - 3):
        shape = SHAPES[k % 3]
        group = k // 3
        prefix = SIZE_VARIANTS[group % 3][0]
        suffix = f' {group // 3 + 1}' if group >= 3 else ''
        names.append(f'{prefix}{shape}{suffix}')
    return tuple(names)


def synthetic_palette(num_classes: int) -> List[List[int]]:
    """One albedo colour per class (also the drawing palette): muted room, bright objects."""
    palette = [[170, 140, 110], [200, 200, 185], [235, 235, 235]]
    for k in range(num_classes - 3):
        hue = (k * 0.381966) % 1.0  # golden-ratio steps spread the hues
        sat = 0.75 if (k // 3) % 2 == 0 else 0.5
        palette.append(_hsv_to_rgb(hue, sat, 0.9))
    return palette[:num_classes]


def _hsv_to_rgb(h: float, s: float, v: float) -> List[int]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return [int(round(255 * c)) for c in rgb]


@lru_cache(maxsize=8)
def _camera_rays(height: int, width: int) -> np.ndarray:
    """Ray directions (z = 1) through the pixel centres, H x W x 3, camera frame."""
    focal = FOCAL_PER_WIDTH * width
    u = (np.arange(width) + 0.5 - width / 2) / focal
    v = (np.arange(height) + 0.5 - height / 2) / focal
    rays = np.empty((height, width, 3), dtype=np.float32)
    rays[..., 0] = u[None, :]
    rays[..., 1] = v[:, None]
    rays[..., 2] = 1.0
    rays.flags.writeable = False
    return rays


def _rotation_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rotation_x(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


class _Object:
    """One object of a scene; ``hit`` intersects it with rays (world frame, camera at 0)."""

    def __init__(self, rng, cls: int, room: dict):
        self.cls = cls
        shape = SHAPES[(cls - 3) % 3]
        scale = SIZE_VARIANTS[((cls - 3) // 3) % 3][1]
        self.shape = shape
        floor_y = room['floor_y']
        x = rng.uniform(room['left'] + 0.6, room['right'] - 0.6)
        z = rng.uniform(2.0, room['back'] - 0.6)
        if shape == 'box':
            self.half = np.array(
                [
                    rng.uniform(0.2, 0.45) * scale,
                    rng.uniform(0.15, 0.5) * scale,
                    rng.uniform(0.2, 0.45) * scale,
                ]
            )
            self.centre = np.array([x, floor_y - self.half[1], z])
            self.rotation = _rotation_y(rng.uniform(0, math.pi / 2))
            self.radius = float(np.linalg.norm(self.half))
        elif shape == 'sphere':
            self.r = rng.uniform(0.2, 0.4) * scale
            self.centre = np.array([x, floor_y - self.r, z])
            self.radius = self.r
        else:
            self.r = rng.uniform(0.15, 0.3) * scale
            height = rng.uniform(0.4, 1.1) * scale
            self.top, self.bottom = floor_y - height, floor_y
            self.centre = np.array([x, floor_y - height / 2, z])
            self.radius = math.hypot(self.r, height / 2)
        self.albedo = np.array(room['palette'][cls], dtype=np.float64) / 255
        self.albedo = np.clip(self.albedo * rng.uniform(0.85, 1.15, 3), 0, 1)
        # texture: stripes along height (period), optionally checkered around
        self.period = rng.uniform(0.08, 0.2)
        self.checkered = bool(cls % 2)

    def hit(self, rays: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(t, world normals) of ``rays`` (N x 3); t = inf where missed."""
        return getattr(self, f'_hit_{self.shape}')(rays)

    def _hit_sphere(self, rays):
        c = self.centre
        a = np.einsum('ij,ij->i', rays, rays)
        b = rays @ c
        disc = b * b - a * (c @ c - self.r**2)
        with np.errstate(invalid='ignore'):
            t = (b - np.sqrt(disc)) / a
        t = np.where((disc >= 0) & (t > 0), t, np.inf)
        normals = (rays * np.where(np.isfinite(t), t, 0)[:, None] - c) / self.r
        return t, normals

    def _hit_box(self, rays):
        rot = self.rotation  # box -> world
        local = rays @ rot  # the rays in the box frame
        origin = -(rot.T @ self.centre)
        near, far, signs = [], [], []
        for i in range(3):
            direction = local[:, i]
            with np.errstate(divide='ignore', invalid='ignore'):
                t1 = (-self.half[i] - origin[i]) / direction
                t2 = (self.half[i] - origin[i]) / direction
            # a ray parallel to a slab and exactly on its boundary gives 0 / 0 = nan: that
            # slab then does not constrain the ray
            near.append(np.where(np.isnan(t1), -np.inf, np.minimum(t1, t2)))
            far.append(np.where(np.isnan(t1), np.inf, np.maximum(t1, t2)))
            signs.append(-np.sign(direction))
        t_near = np.maximum(np.maximum(near[0], near[1]), near[2])
        t_far = np.minimum(np.minimum(far[0], far[1]), far[2])
        hit = (t_near <= t_far) & (t_near > 0)
        t = np.where(hit, t_near, np.inf)
        normals_local = np.empty_like(rays)
        for i in range(3):
            normals_local[:, i] = np.where(near[i] == t_near, signs[i], 0.0)
        return t, normals_local @ rot.T

    def _hit_cylinder(self, rays):
        cx, cz = self.centre[0], self.centre[2]
        dx, dy, dz = rays[:, 0], rays[:, 1], rays[:, 2]
        a = dx * dx + dz * dz
        b = dx * cx + dz * cz
        disc = b * b - a * (cx * cx + cz * cz - self.r**2)
        with np.errstate(invalid='ignore', divide='ignore'):
            t_side = (b - np.sqrt(disc)) / a
            y = t_side * dy
            side_ok = (disc >= 0) & (t_side > 0)
            side_ok &= (y >= self.top) & (y <= self.bottom)
            t_side = np.where(side_ok, t_side, np.inf)
            # the top cap is visible only from above it (y grows downwards)
            t_cap = np.where(dy > 0, self.top / dy, np.inf)
        px, pz = t_cap * dx - cx, t_cap * dz - cz
        with np.errstate(invalid='ignore'):
            cap_ok = (
                (self.top > 0) & (t_cap > 0) & (px * px + pz * pz <= self.r**2)
            )
        t_cap = np.where(cap_ok, t_cap, np.inf)
        t = np.minimum(t_side, t_cap)
        normals = np.zeros_like(rays)
        on_side = np.isfinite(t_side) & (t_side <= t_cap)
        ts = np.where(on_side, t_side, 0)
        normals[:, 0] = np.where(on_side, (ts * dx - cx) / self.r, 0)
        normals[:, 2] = np.where(on_side, (ts * dz - cz) / self.r, 0)
        normals[:, 1] = np.where(on_side, 0.0, -1.0)
        return t, normals

    def window(self, rot_cam: np.ndarray, height: int, width: int):
        """Pixel rows and columns that can see the object (its bounding sphere's projection)."""
        x, y, z = rot_cam.T @ self.centre
        r = self.radius
        if z - r <= 0.05:
            return slice(0, height), slice(0, width)
        focal = FOCAL_PER_WIDTH * width
        corners_x = [
            (x + sx * r) / (z + sz * r) for sx in (-1, 1) for sz in (-1, 1)
        ]
        corners_y = [
            (y + sy * r) / (z + sz * r) for sy in (-1, 1) for sz in (-1, 1)
        ]
        c0 = math.floor(min(corners_x) * focal + width / 2) - 1
        c1 = math.ceil(max(corners_x) * focal + width / 2) + 1
        r0 = math.floor(min(corners_y) * focal + height / 2) - 1
        r1 = math.ceil(max(corners_y) * focal + height / 2) + 1
        rows = slice(min(max(r0, 0), height), min(max(r1, 0), height))
        cols = slice(min(max(c0, 0), width), min(max(c1, 0), width))
        return rows, cols


def _boundaries(ids: np.ndarray) -> np.ndarray:
    """1 on both pixels of every 4-neighbour pair whose ids differ."""
    edge = np.zeros(ids.shape, dtype=bool)
    vertical = ids[1:] != ids[:-1]
    horizontal = ids[:, 1:] != ids[:, :-1]
    edge[1:] |= vertical
    edge[:-1] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge.astype(np.uint8)


def render_scene(
    seed: int,
    index: int,
    height: int = 288,
    width: int = 384,
    num_classes: int = DEFAULT_NUM_CLASSES,
) -> Dict[str, np.ndarray]:
    """Render scene ``index`` of the scenes of ``seed``.

    Returns:
        dict with ``img`` (uint8 H x W x 3 RGB) and the maps of every task in the pipeline
        convention: ``semseg``, ``human_parts``, ``edge``, ``saliency`` (uint8 H x W),
        ``depth`` (float32 H x W metres), ``normals`` (float32 H x W x 3 unit vectors).
    """
    synthetic_classes(num_classes)  # validates num_classes
    rng = np.random.default_rng([seed, index])
    palette = synthetic_palette(num_classes)

    # camera: height above the floor, pitch (looking down), yaw
    cam_height = rng.uniform(1.2, 1.6)
    rot_cam = _rotation_y(rng.uniform(-0.25, 0.25)) @ _rotation_x(
        -rng.uniform(0.05, 0.3)
    )  # camera -> world; world y points down, the camera sits at the origin
    rays_cam = _camera_rays(height, width)
    rays = rays_cam @ rot_cam.T.astype(np.float32)

    room = dict(
        floor_y=cam_height,
        ceiling_y=cam_height - rng.uniform(2.6, 3.2),
        back=rng.uniform(5.0, 8.0),
        front=-1.0,
        left=-rng.uniform(2.0, 3.5),
        right=rng.uniform(2.0, 3.5),
        palette=palette,
    )
    # The six planes, in pairs along y, z, x: (class, world normal facing into the room).
    planes = [
        (FLOOR, (0, -1, 0)),
        (CEILING, (0, 1, 0)),
        (WALL, (0, 0, -1)),  # back
        (WALL, (0, 0, 1)),  # front, behind the camera
        (WALL, (-1, 0, 0)),  # right
        (WALL, (1, 0, 0)),  # left
    ]
    dx, dy, dz = rays[..., 0], rays[..., 1], rays[..., 2]
    ahead = np.stack([dy > 0, dz > 0, dx > 0])
    f32 = np.float32
    with np.errstate(divide='ignore', invalid='ignore'):
        plane_t = np.stack(
            [
                np.where(
                    ahead[0], f32(room['floor_y']), f32(room['ceiling_y'])
                )
                / dy,
                np.where(ahead[1], f32(room['back']), f32(room['front'])) / dz,
                np.where(ahead[2], f32(room['right']), f32(room['left'])) / dx,
            ]
        )
    plane_t[~(plane_t > 0)] = np.inf
    t_y, t_z, t_x = plane_t
    depth = np.minimum(np.minimum(t_y, t_z), t_x)
    along_y, along_z = t_y == depth, (t_z == depth) & (t_y != depth)
    pair = np.where(along_y, 0, np.where(along_z, 1, 2))
    facing = np.where(along_y, ahead[0], np.where(along_z, ahead[1], ahead[2]))
    surface = 2 * pair + (~facing)  # 0..5 planes, 6 + k object k
    # np.take: several times faster than fancy indexing for table lookups
    normals = np.take(
        np.array([p[1] for p in planes], dtype=np.float32), surface, axis=0
    )
    labels = np.take(np.array([p[0] for p in planes], dtype=np.uint8), surface)
    parts = np.zeros((height, width), dtype=np.uint8)

    objects = [
        _Object(rng, int(rng.integers(3, num_classes)), room)
        for _ in range(int(rng.integers(3, 8)))
    ]
    for k, obj in enumerate(objects):
        rows, cols = obj.window(rot_cam, height, width)
        window_rays = rays[rows, cols].reshape(-1, 3).astype(np.float64)
        if window_rays.size == 0:
            continue
        t, obj_normals = obj.hit(window_rays)
        shape = depth[rows, cols].shape
        t = t.reshape(shape)
        closer = t < depth[rows, cols]
        if not closer.any():
            continue
        depth[rows, cols][closer] = t[closer]
        surface[rows, cols][closer] = 6 + k
        labels[rows, cols][closer] = obj.cls
        normals[rows, cols][closer] = obj_normals.reshape(*shape, 3)[closer]
        hit_y = window_rays[:, 1].reshape(shape)[closer] * t[closer]
        up = -obj_normals[:, 1].reshape(shape)[closer] > 0.7
        parts[rows, cols][closer] = np.where(
            up, 1, np.where(hit_y < obj.centre[1], 2, 3)
        )

    image = _shade(rng, room, planes, objects, surface, rays, depth, normals)

    # every surface's normal is unit length already, and a rotation keeps it so
    normals_cam = normals @ rot_cam.astype(np.float32)
    # instance ids: the room's surfaces by class (a wall corner is no contour), objects by index
    instances = np.where(surface >= 6, surface.astype(np.int64) + 100, labels)
    is_object = labels >= len(STRUCTURE_CLASSES)
    return dict(
        img=image,
        semseg=labels,
        depth=(depth * rays_cam[..., 2]).astype(np.float32),
        normals=normals_cam.astype(np.float32),
        edge=_boundaries(instances),
        saliency=is_object.astype(np.uint8),
        human_parts=np.where(is_object, parts, 0).astype(np.uint8),
    )


def _parity(values: np.ndarray) -> np.ndarray:
    """floor(values) mod 2 as int (0/1): the colour of a stripe or checker cell."""
    return np.floor(values).astype(np.int64) & 1


def _shade(
    rng, room, planes, objects, surface, rays, depth, normals
) -> np.ndarray:
    """Textured albedo times Lambertian shading, plus noise: uint8 RGB."""
    n_planes = len(planes)
    albedo_table = (
        np.array([room['palette'][p[0]] for p in planes], dtype=np.float64)
        / 255
    )
    albedo_table *= rng.uniform(0.85, 1.15, (n_planes, 3))
    albedo_table = np.concatenate(
        [np.clip(albedo_table, 0, 1)] + [obj.albedo[None] for obj in objects]
    ).astype(np.float32)
    texture = np.ones(surface.shape, dtype=np.float32)
    tile = rng.uniform(0.4, 0.8)
    stripe = rng.uniform(0.3, 0.7)

    def hits(mask, axes):
        """World coordinates ``axes`` of the hit points of the pixels of ``mask``."""
        t = depth[mask]
        return [rays[..., axis][mask] * t for axis in axes]

    floor = surface == 0
    x, z = hits(floor, (0, 2))
    texture[floor] = 0.78 + 0.22 * (_parity(x / tile) ^ _parity(z / tile))
    for ids, axis in (
        ((2, 3), 0),
        ((4, 5), 2),
    ):  # back/front walls, side walls
        wall = (surface == ids[0]) | (surface == ids[1])
        (along,) = hits(wall, (axis,))
        texture[wall] = 0.88 + 0.12 * _parity(along / stripe)
    on_object = surface >= n_planes
    if on_object.any():
        k = surface[on_object] - n_planes
        period = np.array([o.period for o in objects], dtype=np.float32)[k]
        checkered = np.array([o.checkered for o in objects])[k]
        px, py, pz = hits(on_object, (0, 1, 2))
        bands = _parity(py / period) ^ (
            checkered & _parity((px + pz) / period)
        )
        texture[on_object] = 0.8 + 0.2 * bands

    light = np.array([rng.uniform(-0.5, 0.5), -1.0, rng.uniform(-0.6, 0.2)])
    light = (light / np.linalg.norm(light)).astype(np.float32)
    ambient = np.float32(rng.uniform(0.3, 0.45))
    shade = ambient + (1 - ambient) * np.clip(normals @ light, 0, None)
    # grey sensor noise, uniform with standard deviation 2 (cheaper to draw than Gaussian)
    noise = (rng.random(surface.shape, dtype=np.float32) - 0.5) * 6.93
    grey = texture * shade * 255
    colour = np.take(albedo_table, surface, axis=0) * grey[..., None]
    colour += noise[..., None] + 0.5  # + 0.5: the uint8 cast then rounds
    return np.clip(colour, 0, 255, out=colour).astype(np.uint8)


@DATASETS.register_module()
class SyntheticScenesDataset(BaseMultiTaskDataset):
    """Procedurally rendered indoor scenes with all six tasks; needs no download.

    See the module docstring for what each task map holds. Samples are rendered by the
    :class:`~ctal_mm.datasets.transforms.LoadSyntheticScene` transform at the head of the
    pipeline; ``img_path`` is None (there is no file), as with mmseg's in-memory images.

    Args:
        num_samples: number of samples.
        img_size: (h, w) of the images.
        num_classes: semseg classes (>= 4): floor, wall, ceiling and object classes.
        seed: the scenes' seed; use another seed for a held-out split.
        tasks: the tasks to load (default: all six).
        **kwargs: see :class:`BaseMultiTaskDataset` (``pipeline``, ``test_mode``...).
    """

    METAINFO = dict(
        tasks=SYNTHETIC_TASKS,
        task_kinds=SYNTHETIC_TASK_KINDS,
        human_parts_classes=PART_CLASSES,
        human_parts_palette=PART_PALETTE,
    )
    SPLITS = ('train', 'val', 'test')

    def __init__(
        self,
        num_samples: int = 500,
        img_size: Sequence[int] = (288, 384),
        num_classes: int = DEFAULT_NUM_CLASSES,
        seed: int = 0,
        tasks: Optional[Sequence[str]] = None,
        metainfo: Optional[dict] = None,
        **kwargs,
    ):
        if num_samples < 1:
            raise ValueError(f'num_samples={num_samples}; expected >= 1.')
        if len(img_size) != 2 or min(img_size) < 2:
            raise ValueError(
                f'img_size={img_size}; expected (h, w), each >= 2.'
            )
        self.num_samples = int(num_samples)
        self.img_size = (int(img_size[0]), int(img_size[1]))
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        metainfo = dict(
            classes=synthetic_classes(self.num_classes),
            palette=synthetic_palette(self.num_classes),
            **(metainfo or {}),
        )
        super().__init__(tasks=tasks, metainfo=metainfo, **kwargs)

    def load_data_list(self) -> List[dict]:
        height, width = self.img_size
        return [
            dict(
                img_path=None,
                scene=dict(
                    seed=self.seed,
                    index=index,
                    height=height,
                    width=width,
                    num_classes=self.num_classes,
                ),
                task_kinds=dict(self.task_kinds),
            )
            for index in range(self.num_samples)
        ]
