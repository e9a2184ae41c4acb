"""NYUD-v2 in the multitask protocol of MTI-Net / ATRC / InvPT ("NYUD-MT"): four tasks.

795 train / 654 val images at full resolution, 40-class semseg, depth in metres, surface
normals and edges. Two archives of it circulate; both are read into the same four maps:

==========  =========================  =========================  ==========================
folder      MTI-Net archive (NYUD_MT)  ATRC / InvPT (NYUDv2)      decoded here to
==========  =========================  =========================  ==========================
images/     ``<id>.jpg``               ``<id>.png``               uint8 RGB
segmentat.  ``<id>.png`` 0..40         ``<id>.png`` 0..40         uint8 0..39, 0 -> 255
depth/      ``<id>.npy`` metres        ``<id>.npy`` metres        float32, 0 = invalid
normals/    ``<id>.npy`` in [-1, 1]    ``<id>.png`` 2 v / 255 - 1 float32 unit, 0 = invalid
edge/       ``<id>.npy`` 0 / 1         ``<id>.png`` 0 / 255       uint8 {0, 1}
gt_sets/    ``{train,val}.txt``        ``{train,val}.txt``        the split's image ids
==========  =========================  =========================  ==========================

The layout is detected from the files of the split's first image (``layout='auto'``) or
chosen with ``layout='mtinet'`` / ``'atrc'``; an archive that mixes both, or lacks files of
the selected tasks, fails with an error naming the files and the fix. Where each encoding
comes from (the public loaders of the three projects) is in docs/dataset_prepare.md.
"""

import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ctal_mm.registry import DATASETS
from ctal_mm.structures import IGNORE_INDEX, get_task_kind
from ctal_mm.utils.palette import hsv_palette, spread_hues

from .base_multitask_dataset import DATASET_HINT, BaseMultiTaskDataset
from .file_io import (
    DEFAULT_MAX_DEPTH,
    FIX_HINT,
    DataFileError,
    check_max_depth,
    read_id_list,
    read_npy,
    read_pil,
)
from .transforms.geometric import resize_task_map
from .transforms.loading import register_gt_decoder, unit_normals

# The 40 classes of NYUv2's 40-class labelling (Gupta et al.), in label order 1..40 of the
# archives' segmentation PNGs (0 there = unlabelled). Names are for display and logs only.
NYUD_MT_CLASSES = (
    'wall', 'floor', 'cabinet', 'bed', 'chair', 'sofa', 'table', 'door',
    'window', 'bookshelf', 'picture', 'counter', 'blinds', 'desk', 'shelves',
    'curtain', 'dresser', 'pillow', 'mirror', 'floor mat', 'clothes',
    'ceiling', 'books', 'refrigerator', 'television', 'paper', 'towel',
    'shower curtain', 'box', 'whiteboard', 'person', 'night stand', 'toilet',
    'sink', 'lamp', 'bathtub', 'bag', 'otherstructure', 'otherfurniture',
    'otherprop',
)  # fmt: skip


def spread_palette(num_classes: int) -> List[List[int]]:
    """Distinct colours: hues by the golden ratio, alternating two brightness levels."""
    return hsv_palette(
        (hue, 0.75, (0.95, 0.7)[k % 2])
        for k, hue in enumerate(spread_hues(num_classes))
    )


# folder of each map and its file extension in each layout
FOLDERS = dict(
    image='images',
    semseg='segmentation',
    depth='depth',
    normals='normals',
    edge='edge',
)
LAYOUTS: Dict[str, Dict[str, str]] = dict(
    mtinet=dict(
        image='.jpg', semseg='.png', depth='.npy', normals='.npy', edge='.npy'
    ),
    atrc=dict(
        image='.png', semseg='.png', depth='.npy', normals='.png', edge='.png'
    ),
)
LAYOUT_NAMES = dict(
    mtinet='the MTI-Net archive (NYUD_MT.tgz)',
    atrc='the ATRC / InvPT archive (NYUDv2.tar.gz)',
)
# the folder an archive extracts to, for the hint when data_root is its parent
ARCHIVE_FOLDERS = ('NYUD_MT', 'NYUDv2')

NUM_CLASSES = len(NYUD_MT_CLASSES)
# A PNG normal is 8-bit (n + 1) * 255 / 2 per channel, so decoded unit vectors have length
# 1 +- ~1%. Anything far from that is not a normal: an all-zero ("no normal") vector written
# this way becomes grey 127/128, which decodes to length < 0.01.
PNG_NORMAL_LENGTH = (0.5, 1.5)

_RESIZE_WARNED = set()


def _fit(
    array: np.ndarray,
    shape: Tuple[int, int],
    task: str,
    path: str,
    resize: bool,
) -> np.ndarray:
    """``array`` at the image size ``shape``: resized by its task kind, or an error."""
    if tuple(array.shape[:2]) == tuple(shape):
        return array
    if not resize:
        raise DataFileError(
            f'{path}: {task} map is {array.shape[0]} x {array.shape[1]} but '
            f'its image is {shape[0]} x {shape[1]}. Re-extract the archive, '
            'or set resize_mismatched=True on the dataset to resize such maps '
            "to their image (MTI-Net's loader does that)."
        )
    if task not in _RESIZE_WARNED:
        _RESIZE_WARNED.add(task)
        warnings.warn(
            f'{path}: {task} map is {array.shape[:2]}, its image {shape}; '
            'resizing it to the image (resize_mismatched=True). Further '
            f'{task} maps of another size are resized without a warning.'
        )
    kind = get_task_kind(task)
    # depth is a distance, not a scale: a map resized to its own image keeps its values
    return resize_task_map(
        array, kind, (shape[1], shape[0]), depth_scale=1.0, depth_mode='keep'
    )


def _single_channel(array: np.ndarray, path: str, what: str) -> np.ndarray:
    """H x W from H x W or H x W x 1 (both archives store either)."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise DataFileError(
            f'{path}: has shape {tuple(array.shape)}; expected {what} of shape '
            f'H x W (or H x W x 1). {FIX_HINT}'
        )
    return array


def _check_finite(array: np.ndarray, path: str, what: str) -> None:
    if (
        np.issubdtype(array.dtype, np.floating)
        and not np.isfinite(array).all()
    ):
        raise DataFileError(
            f'{path}: contains NaN or infinite values; expected {what}. '
            f'{FIX_HINT}'
        )


@register_gt_decoder('nyud_semseg')
def decode_nyud_semseg(
    path: str, shape: Tuple[int, int], resize: bool = False
) -> np.ndarray:
    """A NYUD-MT label PNG (1..40 = classes, 0 = unlabelled) as uint8 0..39, 255 = ignore."""
    what = (
        'a single-channel PNG of NYUv2 40-class labels (0 = unlabelled, 1..40)'
    )
    labels = _single_channel(read_pil(path, what), path, what)
    if labels.dtype.kind not in 'ui':
        raise DataFileError(
            f'{path}: holds {labels.dtype} values; expected {what}. {FIX_HINT}'
        )
    bad = (labels < 0) | (labels > NUM_CLASSES)
    if bad.any():
        values = np.unique(labels[bad])[:8].tolist()
        raise DataFileError(
            f'{path}: contains value(s) {values}; expected {what}. A map '
            'already shifted to 0..39 with 255 = ignore is not an archive '
            "file: use the archive's segmentation/ PNGs."
        )
    # the field ignores "unlabelled" and predicts the 40 classes: 0 -> ignore, k -> k - 1
    shifted = np.where(
        labels == 0, IGNORE_INDEX, labels.astype(np.int64) - 1
    ).astype(np.uint8)
    return _fit(shifted, shape, 'semseg', path, resize)


@register_gt_decoder('nyud_depth')
def decode_nyud_depth(
    path: str,
    shape: Tuple[int, int],
    max_depth: Optional[float] = DEFAULT_MAX_DEPTH,
    resize: bool = False,
) -> np.ndarray:
    """A NYUD-MT depth .npy (metres, 0 = no measurement) as float32 H x W."""
    what = 'an H x W depth map in metres, 0 = no measurement'
    depth = _single_channel(read_npy(path, what), path, what)
    _check_finite(depth, path, what + ' (mark missing depth with 0)')
    depth = depth.astype(np.float32)
    if (depth < 0).any():
        raise DataFileError(
            f'{path}: contains negative depths (min {depth.min():.4g}); '
            f'expected {what}. {FIX_HINT}'
        )
    check_max_depth(depth, path, what, max_depth)
    return _fit(depth, shape, 'depth', path, resize)


def _decode_png_normals(path: str) -> np.ndarray:
    what = 'an H x W x 3 8-bit RGB normal PNG, n = 2 v / 255 - 1'
    encoded = read_pil(path, what)
    if encoded.ndim == 3 and encoded.shape[2] == 4:
        encoded = encoded[..., :3]  # an alpha channel carries no normal
    if encoded.ndim != 3 or encoded.shape[2] != 3 or encoded.dtype != np.uint8:
        raise DataFileError(
            f'{path}: is a {encoded.dtype} image of shape '
            f'{tuple(encoded.shape)}; expected {what}. {FIX_HINT}'
        )
    normals = 2.0 * encoded.astype(np.float32) / 255.0 - 1.0
    length = np.linalg.norm(normals, axis=-1)
    low, high = PNG_NORMAL_LENGTH
    normals[(length < low) | (length > high)] = 0.0
    return normals


def _decode_npy_normals(path: str) -> np.ndarray:
    what = 'an H x W x 3 normal map in [-1, 1], all-zero = no normal'
    normals = read_npy(path, what)
    if normals.ndim != 3 or normals.shape[2] != 3:
        raise DataFileError(
            f'{path}: has shape {tuple(normals.shape)}; expected {what}. '
            f'{FIX_HINT}'
        )
    _check_finite(normals, path, what)
    normals = normals.astype(np.float32)
    if np.abs(normals).max(initial=0) > 1.0 + 1e-3:
        raise DataFileError(
            f'{path}: values reach {np.abs(normals).max():.4g}; expected '
            f'{what}. {FIX_HINT}'
        )
    return normals


@register_gt_decoder('nyud_normals')
def decode_nyud_normals(
    path: str, shape: Tuple[int, int], resize: bool = False
) -> np.ndarray:
    """NYUD-MT normals (.npy vectors or .png 8-bit encoding) as unit float32, 0 = invalid."""
    if path.endswith('.png'):
        normals = _decode_png_normals(path)
    else:
        normals = _decode_npy_normals(path)
    # 8-bit decoding and float storage leave vectors within ~1% of unit length: rescale
    return _fit(unit_normals(normals), shape, 'normals', path, resize)


@register_gt_decoder('nyud_edge')
def decode_nyud_edge(
    path: str, shape: Tuple[int, int], resize: bool = False
) -> np.ndarray:
    """NYUD-MT edges (.npy in [0, 1] or .png in 0..255) as uint8 {0, 1}, split at 0.5."""
    if path.endswith('.png'):
        what = 'a single-channel 8-bit edge PNG (255 = edge)'
        edge = _single_channel(read_pil(path, what), path, what)
        if edge.dtype != np.uint8:
            raise DataFileError(
                f'{path}: holds {edge.dtype} values; expected {what}. '
                f'{FIX_HINT}'
            )
        edge = edge.astype(np.float32) / 255.0
    else:
        what = 'an H x W edge map with values in [0, 1] (1 = edge)'
        edge = _single_channel(read_npy(path, what), path, what)
        _check_finite(edge, path, what)
        if edge.size and (edge.min() < 0 or edge.max() > 1):
            raise DataFileError(
                f'{path}: values span [{edge.min():.4g}, {edge.max():.4g}]; '
                f'expected {what}. {FIX_HINT}'
            )
    # both loaders feed these values to a BCE as targets; a binary map passes unchanged
    binary = (edge > 0.5).astype(np.uint8)
    return _fit(binary, shape, 'edge', path, resize)


@DATASETS.register_module()
class NYUDMTDataset(BaseMultiTaskDataset):
    """NYUD-v2 for multitask learning as MTI-Net, ATRC and InvPT use it (NYUD-MT).

    Tasks: semseg (40 classes), depth (metres), normals, edge. Reads the MTI-Net archive
    (``images/*.jpg``, ``normals/*.npy``, ``edge/*.npy``) and the ATRC / InvPT one
    (``images/*.png``, ``normals/*.png``, ``edge/*.png``); see the module docstring.

    Args:
        layout: ``'auto'`` (detect from the files), ``'mtinet'`` or ``'atrc'``.
        max_depth: depths above this many metres are refused as a unit mix-up (None: no check).
        resize_mismatched: resize a task map whose size differs from its image to the image
            (nearest for labels and depth, bilinear + renormalised for normals), as
            MTI-Net's loader does, with one warning per task; False makes it an error.
        **kwargs: see :class:`BaseMultiTaskDataset` (``data_root``, ``split``, ``tasks``...).
    """

    METAINFO = dict(
        tasks=('semseg', 'depth', 'normals', 'edge'),
        task_kinds=dict(
            semseg='segmentation',
            depth='depth',
            normals='normals',
            edge='edge',
        ),
        classes=NYUD_MT_CLASSES,
        palette=spread_palette(NUM_CLASSES),
    )
    LAYOUT_CHOICES = ('auto',) + tuple(LAYOUTS)

    def __init__(
        self,
        layout: str = 'auto',
        max_depth: Optional[float] = DEFAULT_MAX_DEPTH,
        resize_mismatched: bool = True,
        **kwargs,
    ):
        if layout not in self.LAYOUT_CHOICES:
            raise ValueError(
                f'NYUDMTDataset: layout={layout!r}; expected one of '
                f"{self.LAYOUT_CHOICES}: 'mtinet' = {LAYOUT_NAMES['mtinet']}, "
                f"'atrc' = {LAYOUT_NAMES['atrc']}, 'auto' = detect."
            )
        self.requested_layout = layout
        self.layout: Optional[str] = None if layout == 'auto' else layout
        self.max_depth = max_depth
        self.resize_mismatched = resize_mismatched
        super().__init__(**kwargs)

    # ------------------------------------------------------------------ paths

    def path_of(self, key: str, image_id: str, layout: str) -> str:
        """The file of map ``key`` ('image' or a task) of ``image_id`` in ``layout``."""
        return osp.join(
            self.data_root, FOLDERS[key], image_id + LAYOUTS[layout][key]
        )

    def _root_hint(self) -> str:
        for name in ARCHIVE_FOLDERS:
            inner = osp.join(self.data_root, name)
            if osp.isdir(osp.join(inner, 'gt_sets')):
                return (
                    f' data_root holds the extracted archive folder {name}/: '
                    f'point data_root at {inner}.'
                )
        return ''

    def read_split(self) -> List[str]:
        split_dir = osp.join(self.data_root, 'gt_sets')
        split_file = osp.join(split_dir, f'{self.split}.txt')
        if not osp.isfile(split_file):
            hint = self._root_hint()
            if hint:
                raise FileNotFoundError(
                    f'NYUDMTDataset: {split_file} does not exist;{hint}'
                )
            self.require_dir(split_dir, 'split lists gt_sets/{train,val}.txt')
            raise FileNotFoundError(
                f'NYUDMTDataset: split list {split_file} does not exist; '
                'expected one image id per line (both NYUD-MT archives ship '
                f'gt_sets/train.txt and gt_sets/val.txt). {DATASET_HINT}'
            )
        ids = read_id_list(split_file)
        if not ids:
            raise DataFileError(
                f'{split_file}: lists no image ids; expected one per line.'
            )
        return ids

    # ----------------------------------------------------------------- layout

    def _layout_keys(self) -> Tuple[str, ...]:
        """The maps whose extension tells the layouts apart, among the selected ones."""
        return ('image',) + tuple(
            t for t in ('normals', 'edge') if t in self.tasks
        )

    def detect_layout(self, image_id: str) -> str:
        """The layout the files of ``image_id`` follow; DataFileError if none or mixed."""
        votes: Dict[str, List[str]] = {}
        both = []
        for key in self._layout_keys():
            found = [
                name
                for name in LAYOUTS
                if osp.isfile(self.path_of(key, image_id, name))
            ]
            if len(found) == 1:
                path = self.path_of(key, image_id, found[0])
                votes.setdefault(found[0], []).append(path)
            elif found:
                both.append(key)
        if len(votes) == 1:
            return next(iter(votes))
        if not votes and both:
            raise DataFileError(
                f'NYUDMTDataset: image {image_id!r} has its {both} files in '
                'both NYUD-MT layouts (e.g. images/<id>.jpg and .png), so the '
                "layout cannot be detected: set layout='mtinet' "
                f"({LAYOUT_NAMES['mtinet']}) or layout='atrc' "
                f'({LAYOUT_NAMES["atrc"]}).'
            )
        if not votes:
            expected = ' or '.join(
                sorted({self.path_of('image', image_id, n) for n in LAYOUTS})
            )
            self.require_dir(osp.join(self.data_root, 'images'), 'images')
            raise DataFileError(
                f'NYUDMTDataset: found neither {expected} (image {image_id!r}, '
                f'the first of gt_sets/{self.split}.txt).{self._root_hint()} '
                'Extract one NYUD-MT archive completely (see '
                'docs/dataset_prepare.md).'
            )
        lines = [
            f'  {LAYOUT_NAMES[name]}: {", ".join(paths)}'
            for name, paths in sorted(votes.items())
        ]
        raise DataFileError(
            'NYUDMTDataset: the files of image '
            f'{image_id!r} mix the two NYUD-MT layouts:\n'
            + '\n'.join(lines)
            + (
                '\nUse one archive as extracted (not files of both), or set '
                "layout='mtinet' / 'atrc' to say which files to read."
            )
        )

    # ------------------------------------------------------------------- list

    def task_entry(self, task: str, image_id: str) -> dict:
        """The ``ann_info`` entry of ``task`` for ``image_id`` in the chosen layout."""
        entry = dict(
            decoder=f'nyud_{task}',
            path=self.path_of(task, image_id, self.layout),
            resize=self.resize_mismatched,
        )
        if task == 'depth':
            entry['max_depth'] = self.max_depth
        return entry

    def load_data_list(self) -> List[dict]:
        ids = self.read_split()
        if self.requested_layout == 'auto':
            self.layout = self.detect_layout(ids[0])
        for key in ('image',) + tuple(self.tasks):
            self.require_dir(
                osp.join(self.data_root, FOLDERS[key]),
                'images' if key == 'image' else f'the {key!r} maps',
            )
        data_list, missing = [], {}
        for image_id in ids:
            img_path = self.path_of('image', image_id, self.layout)
            ann_info = {t: self.task_entry(t, image_id) for t in self.tasks}
            files = [('image', img_path)] + [
                (task, entry['path']) for task, entry in ann_info.items()
            ]
            for key, path in files:
                if not osp.isfile(path):
                    missing.setdefault(key, []).append((image_id, path))
            data_list.append(
                dict(
                    img_path=img_path,
                    image_id=image_id,
                    layout=self.layout,
                    task_kinds=dict(self.task_kinds),
                    ann_info=ann_info,
                )
            )
        if missing:
            raise DataFileError(self._missing_message(ids, missing))
        return data_list

    def _missing_message(
        self, ids: Sequence[str], missing: Dict[str, list]
    ) -> str:
        other = next(name for name in LAYOUTS if name != self.layout)
        lines, mixed = [], False
        for key, items in missing.items():
            image_id, path = items[0]
            line = f'  {key}: {len(items)} of {len(ids)} missing, e.g. {path}'
            alternative = self.path_of(key, image_id, other)
            if LAYOUTS[other][key] != LAYOUTS[self.layout][key] and (
                osp.isfile(alternative)
            ):
                line += f' (but {alternative} exists)'
                mixed = True
            lines.append(line)
        how = (
            'auto-detected from the first image'
            if self.requested_layout == 'auto'
            else 'set by layout='
        )
        fix = (
            f'The archive mixes layouts: the layout is {self.layout!r} '
            f'({LAYOUT_NAMES[self.layout]}, {how}) but some files follow '
            f'{LAYOUT_NAMES[other]}. Use one archive as extracted, or set '
            'layout= to the one the files follow.'
            if mixed
            else 'Every image of the split needs a file per selected task: '
            're-extract the archive (see docs/dataset_prepare.md) or select '
            'fewer tasks (tasks=...).'
        )
        return (
            f'NYUDMTDataset: files listed by gt_sets/{self.split}.txt under '
            f'{self.data_root} are missing ({self.layout!r} layout):\n'
            + '\n'.join(lines)
            + '\n'
            + fix
        )
