"""PASCAL-Context in the PASCAL_MT layout of MTI-Net / ASTMT: five tasks, 4998 train / 5105 val.

Layout under ``data_root`` (e.g. ``data/PASCAL_MT``)::

    JPEGImages/<id>.jpg                     images
    ImageSets/Context/{train,val}.txt       split ids, one per line
    ImageSets/Parts/{train,val}.txt         cache: JSON {id: [PASCAL category of each object]}
    semseg/VOC12/<id>.png                   21-class labels (VOC 2012), 255 = ignore
    semseg/pascal-context/<id>.png          the same for images VOC12 does not label
    pascal-context/trainval/<id>.mat        LabelMap: full 459-class PASCAL-Context labels
    human_parts/<id>.mat                    PASCAL-Part annotations
    normals_distill/<id>.png                distilled normals, RGB, n = 2 v / 255 - 1
    sal_distill/<id>.png                    distilled saliency, grey levels

How each task's map is made (the reference's definitions, see docs/dataset_prepare.md):

* semseg: the VOC12 PNG when it exists, else the pascal-context one.
* edge: pixels where the 3x3 Laplacian of LabelMap is non-zero, thinned to one pixel.
* human_parts: the parts of every person object (category 15) with parts, grouped into 6 parts
  + background (:data:`HUMAN_PART_GROUPS`); an image without any part pixel is all-ignore (255),
  so it adds nothing to the loss or the metric (the reference marks such maps 255 too).
* normals: the distilled normals, kept only where LabelMap is one of the NYU-compatible
  PASCAL-Context classes (:data:`NYU_COMPATIBLE_CONTEXT_CLASSES`), zero elsewhere; as stored
  (``normals_gt='stored'``, the reference; the 8-bit PNG values are within about 1% of unit
  length) or rescaled to unit length (``'unit'``).
* saliency: grey / 255 > 0.5.
"""

import json
import os
import os.path as osp
import tempfile
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ctal_mm.registry import DATASETS
from ctal_mm.structures import IGNORE_INDEX

from .base_multitask_dataset import BaseMultiTaskDataset
from .file_io import (
    DataFileError,
    check_shape,
    read_id_list,
    read_mat,
    read_pil,
)
from .morphology import thin
from .transforms.loading import (
    check_normals_gt,
    normals_as,
    register_gt_decoder,
)

VOC_CLASSES = (
    'background',
    'aeroplane',
    'bicycle',
    'bird',
    'boat',
    'bottle',
    'bus',
    'car',
    'cat',
    'chair',
    'cow',
    'diningtable',
    'dog',
    'horse',
    'motorbike',
    'person',
    'pottedplant',
    'sheep',
    'sofa',
    'train',
    'tvmonitor',
)

HUMAN_PARTS_CLASSES = (
    'background',
    'head',
    'torso',
    'upper arms',
    'lower arms and hands',
    'upper legs',
    'lower legs and feet',
)
HUMAN_PARTS_PALETTE = [
    [0, 0, 0],
    [230, 25, 75],
    [60, 180, 75],
    [255, 225, 25],
    [0, 130, 200],
    [245, 130, 48],
    [145, 30, 180],
]

# PASCAL-Part person part name -> human_parts class (the 6-group mapping of ASTMT / MTI-Net).
HUMAN_PART_GROUPS: Dict[str, int] = {
    # 1 head
    'hair': 1,
    'head': 1,
    'lear': 1,
    'rear': 1,
    'lebrow': 1,
    'rebrow': 1,
    'leye': 1,
    'reye': 1,
    'mouth': 1,
    'nose': 1,
    # 2 torso
    'neck': 2,
    'torso': 2,
    # 3 upper arms
    'luarm': 3,
    'ruarm': 3,
    # 4 lower arms and hands
    'llarm': 4,
    'rlarm': 4,
    'lhand': 4,
    'rhand': 4,
    # 5 upper legs
    'luleg': 5,
    'ruleg': 5,
    # 6 lower legs and feet
    'llleg': 6,
    'rlleg': 6,
    'lfoot': 6,
    'rfoot': 6,
}
PERSON_CATEGORY = 15  # PASCAL VOC category id of "person"

# LabelMap ids (PASCAL-Context's 459 classes, 1-based) on which the distilled normals are kept:
# the 169 class names PASCAL-Context shares with NYUv2's labels (all but "unknown"), plus
# "tvmonitor" (427), which the reference adds by hand. The names are in docs/dataset_prepare.md.
NYU_COMPATIBLE_CONTEXT_CLASSES: Tuple[int, ...] = (
    3, 4, 6, 9, 10, 11, 13, 15, 17, 18, 22, 23, 29, 30, 33, 34, 36, 37, 38,
    39, 41, 43, 46, 49, 50, 51, 53, 55, 56, 59, 61, 62, 65, 66, 68, 69, 72,
    73, 78, 83, 84, 85, 87, 88, 95, 96, 101, 104, 105, 107, 111, 113, 115,
    122, 124, 135, 141, 142, 143, 146, 150, 154, 157, 158, 159, 165, 172,
    174, 181, 183, 184, 191, 193, 195, 197, 199, 202, 213, 215, 216, 219,
    220, 223, 225, 228, 230, 232, 233, 238, 239, 242, 243, 246, 250, 251,
    252, 255, 260, 261, 263, 269, 272, 273, 275, 281, 283, 284, 285, 286,
    287, 288, 290, 291, 292, 293, 295, 304, 307, 309, 310, 314, 315, 319,
    323, 329, 330, 331, 336, 342, 345, 349, 350, 351, 352, 355, 357, 368,
    370, 371, 374, 379, 380, 383, 384, 397, 401, 403, 405, 407, 408, 411,
    412, 413, 414, 417, 419, 421, 423, 427, 429, 430, 432, 440, 441, 442,
    443, 444, 446, 454, 457,
)  # fmt: skip


def voc_palette(num_classes: int) -> List[List[int]]:
    """PASCAL VOC's colour map: class bits spread over the high bits of R, G, B."""
    palette = []
    for label in range(num_classes):
        r = g = b = 0
        code = label
        for shift in range(7, -1, -1):
            r |= (code >> 0 & 1) << shift
            g |= (code >> 1 & 1) << shift
            b |= (code >> 2 & 1) << shift
            code >>= 3
        palette.append([r, g, b])
    return palette


def read_label_map(path: str, shape: Tuple[int, int]) -> np.ndarray:
    """The full PASCAL-Context LabelMap of a ``pascal-context/trainval/<id>.mat`` file."""
    what = f'a {shape[0]} x {shape[1]} PASCAL-Context LabelMap'
    label_map = read_mat(path, what, ['LabelMap'])['LabelMap']
    if not np.issubdtype(np.asarray(label_map).dtype, np.number):
        raise DataFileError(
            f'{path}: LabelMap has dtype {np.asarray(label_map).dtype}; '
            f'expected {what} of integer class ids.'
        )
    return check_shape(np.asarray(label_map), path, what, shape)


def label_map_edges(label_map: np.ndarray) -> np.ndarray:
    """uint8 {0, 1}: the thinned non-zero 3x3 Laplacian of a label map (the reference's edges)."""
    laplacian = cv2.Laplacian(label_map.astype(np.float64), cv2.CV_64F)
    return thin(np.abs(laplacian) > 0).astype(np.uint8)


@register_gt_decoder('context_edge')
def decode_context_edge(path: str, shape: Tuple[int, int]) -> np.ndarray:
    """Edges of the LabelMap in ``path``, uint8 {0, 1}."""
    return label_map_edges(read_label_map(path, shape))


@register_gt_decoder('context_masked_normals')
def decode_context_masked_normals(
    path: str,
    shape: Tuple[int, int],
    label_map_path: str,
    valid_classes: Optional[Sequence[int]] = None,
    normals_gt: str = 'unit',
) -> np.ndarray:
    """Distilled normals (RGB PNG) kept on the NYU-compatible LabelMap classes, float32: as
    stored (``normals_gt='stored'``) or unit length."""
    what = f'a {shape[0]} x {shape[1]} RGB normal PNG'
    encoded = read_pil(path, what, mode='RGB')
    check_shape(encoded, path, what, (*shape, 3))
    normals = 2.0 * encoded.astype(np.float32) / 255.0 - 1.0
    label_map = read_label_map(label_map_path, shape)
    classes = (
        NYU_COMPATIBLE_CONTEXT_CLASSES
        if valid_classes is None
        else valid_classes
    )
    keep = np.isin(label_map, np.asarray(classes))
    normals[~keep] = 0.0
    # 2 v / 255 - 1 is never 0 for 8-bit v: only the masked pixels are invalid
    return normals_as(normals, normals_gt)


def _struct_field(record, field: str, path: str, what: str):
    names = record.dtype.names or ()
    if field not in names:
        raise DataFileError(
            f'{path}: a PASCAL-Part struct lacks the field {field!r} (it has '
            f'{list(names)}); expected {what}. Use the PASCAL_MT human_parts '
            'files (see docs/dataset_prepare.md).'
        )
    return record[field]


def pascal_part_objects(path: str):
    """The ``anno.objects`` struct array of a PASCAL-Part .mat file, flattened."""
    what = 'PASCAL-Part annotations (anno.objects with class_ind, mask, parts)'
    anno = read_mat(path, what, ['anno'])['anno']
    if anno.dtype.names is None or anno.size == 0:
        raise DataFileError(
            f"{path}: 'anno' is not a struct; expected {what}."
        )
    objects = _struct_field(anno.flat[0], 'objects', path, what)
    if objects.size and objects.dtype.names is None:
        raise DataFileError(
            f'{path}: anno.objects is not a struct array; expected {what}.'
        )
    return objects.ravel(), what


def object_categories(path: str, area_threshold: float = 0) -> List[int]:
    """PASCAL category of every object of a PASCAL-Part file, -1 for those of area <= threshold."""
    objects, what = pascal_part_objects(path)
    categories = []
    for obj in objects:
        area = np.asarray(_struct_field(obj, 'mask', path, what)).sum()
        # .item(): loadmat gives 1x1 arrays, which numpy 2 no longer converts with int()
        category = int(
            np.asarray(_struct_field(obj, 'class_ind', path, what)).item()
        )
        categories.append(category if area > area_threshold else -1)
    return categories


@register_gt_decoder('pascal_human_parts')
def decode_pascal_human_parts(
    path: str,
    shape: Tuple[int, int],
    has_person: bool = True,
    person_category: int = PERSON_CATEGORY,
) -> np.ndarray:
    """The 7-class human-parts map of a PASCAL-Part file; all 255 if it has no part pixel."""
    ignore = np.full(shape, IGNORE_INDEX, dtype=np.uint8)
    if not has_person:
        return ignore
    objects, what = pascal_part_objects(path)
    target = np.zeros(shape, dtype=np.uint8)
    for obj in objects:
        category = int(
            np.asarray(_struct_field(obj, 'class_ind', path, what)).item()
        )
        parts = np.asarray(_struct_field(obj, 'parts', path, what))
        if category != person_category or parts.size == 0:
            continue
        for part in parts.ravel():
            name = str(
                np.asarray(_struct_field(part, 'part_name', path, what)).item()
            )
            if name not in HUMAN_PART_GROUPS:
                raise DataFileError(
                    f'{path}: person part {name!r} is not a PASCAL-Part person '
                    f'part (known: {sorted(HUMAN_PART_GROUPS)}).'
                )
            mask = np.asarray(_struct_field(part, 'mask', path, what))
            check_shape(
                mask, path, f'a {shape[0]} x {shape[1]} part mask', shape
            )
            target[mask.astype(bool)] = HUMAN_PART_GROUPS[name]
    return target if target.any() else ignore


@DATASETS.register_module()
class PascalContextMTDataset(BaseMultiTaskDataset):
    """PASCAL-Context for multitask learning (the MTI-Net / ASTMT "PASCAL_MT" data).

    Tasks: semseg (21 VOC classes), human_parts (7), saliency, normals, edge. See the module
    docstring for the layout and how each map is made.

    Args:
        normals_valid_classes: LabelMap ids where the distilled normals are kept (default
            :data:`NYU_COMPATIBLE_CONTEXT_CLASSES`).
        saliency_threshold: grey / 255 above this is salient (0.5, as the reference).
        parts_area_threshold: objects of at most this many pixels do not count when listing the
            categories of an image (0, as the reference).
        normals_gt: 'stored' (the PNG's vectors as decoded, the reference) or 'unit' (rescaled
            to unit length).
        **kwargs: see :class:`BaseMultiTaskDataset` (``data_root``, ``split``, ``tasks``...).
    """

    METAINFO = dict(
        tasks=('semseg', 'human_parts', 'saliency', 'normals', 'edge'),
        task_kinds=dict(
            semseg='segmentation',
            human_parts='segmentation',
            saliency='saliency',
            normals='normals',
            edge='edge',
        ),
        classes=VOC_CLASSES,
        palette=voc_palette(len(VOC_CLASSES)),
        human_parts_classes=HUMAN_PARTS_CLASSES,
        human_parts_palette=HUMAN_PARTS_PALETTE,
    )

    def __init__(
        self,
        normals_valid_classes: Optional[Sequence[int]] = None,
        saliency_threshold: float = 0.5,
        parts_area_threshold: float = 0,
        normals_gt: str = 'stored',
        **kwargs,
    ):
        self.normals_gt = check_normals_gt(normals_gt, type(self).__name__)
        self.normals_valid_classes = (
            None
            if normals_valid_classes is None
            else tuple(int(c) for c in normals_valid_classes)
        )
        self.saliency_threshold = saliency_threshold
        self.parts_area_threshold = parts_area_threshold
        super().__init__(**kwargs)

    def _path(self, *parts: str) -> str:
        return osp.join(self.data_root, *parts)

    def task_files(self, image_id: str) -> Dict[str, dict]:
        """ann_info entries (without ``has_person``) of ``image_id``; missing files as None."""
        label_map = self._path('pascal-context', 'trainval', f'{image_id}.mat')
        voc = self._path('semseg', 'VOC12', f'{image_id}.png')
        context = self._path('semseg', 'pascal-context', f'{image_id}.png')
        entries = dict(
            semseg=dict(
                decoder='png_label',
                path=voc if osp.isfile(voc) else context,
                num_classes=len(VOC_CLASSES),
            ),
            human_parts=dict(
                decoder='pascal_human_parts',
                path=self._path('human_parts', f'{image_id}.mat'),
            ),
            saliency=dict(
                decoder='png_saliency',
                path=self._path('sal_distill', f'{image_id}.png'),
                threshold=self.saliency_threshold,
            ),
            normals=dict(
                decoder='context_masked_normals',
                path=self._path('normals_distill', f'{image_id}.png'),
                label_map_path=label_map,
                normals_gt=self.normals_gt,
            ),
            edge=dict(decoder='context_edge', path=label_map),
        )
        if self.normals_valid_classes is not None:
            entries['normals']['valid_classes'] = self.normals_valid_classes
        return {task: entries[task] for task in self.tasks}

    def load_data_list(self) -> List[dict]:
        split_file = self._path('ImageSets', 'Context', f'{self.split}.txt')
        if not osp.isfile(split_file):
            self.require_dir(self._path('ImageSets', 'Context'), 'split lists')
            raise FileNotFoundError(
                f'PascalContextMTDataset: split list {split_file} does not '
                'exist; expected one image id per line.'
            )
        ids = read_id_list(split_file)
        if not ids:
            raise DataFileError(f'{split_file}: lists no image ids.')
        data_list, missing = [], {}
        for image_id in ids:
            img_path = self._path('JPEGImages', f'{image_id}.jpg')
            ann_info = self.task_files(image_id)
            files = [('image', img_path)] + [
                (task, entry['path']) for task, entry in ann_info.items()
            ]
            if 'normals' in ann_info:
                files.append(
                    ('normals', ann_info['normals']['label_map_path'])
                )
            for task, path in files:
                if not osp.isfile(path):
                    missing.setdefault(task, []).append(path)
            data_list.append(
                dict(
                    img_path=img_path,
                    image_id=image_id,
                    task_kinds=dict(self.task_kinds),
                    ann_info=ann_info,
                )
            )
        if missing:
            lines = [
                f'  {task}: {len(paths)} of {len(ids)} missing, e.g. {paths[0]}'
                for task, paths in missing.items()
            ]
            raise DataFileError(
                f'PascalContextMTDataset: files listed by {split_file} are '
                'missing:\n' + '\n'.join(lines) + '\nEvery image of the split '
                'needs a file per task: re-extract PASCAL_MT (see '
                'docs/dataset_prepare.md) or select fewer tasks.'
            )
        if 'human_parts' in self.tasks:
            categories = self.object_categories(ids)
            for info in data_list:
                has_person = PERSON_CATEGORY in categories[info['image_id']]
                info['ann_info']['human_parts']['has_person'] = has_person
        return data_list

    def object_categories(self, ids: Sequence[str]) -> Dict[str, List[int]]:
        """{id: categories of its objects}, from the ImageSets/Parts cache or the .mat files.

        A missing or incomplete cache is rebuilt from ``human_parts/<id>.mat`` and written back
        when the folder is writable (atomically, so parallel ranks do not clash).
        """
        cache = self._path('ImageSets', 'Parts', f'{self.split}.txt')
        if osp.isfile(cache):
            try:
                with open(cache) as f:
                    cached = json.load(f)
            except (ValueError, UnicodeDecodeError) as error:
                raise DataFileError(
                    f'{cache}: not valid JSON ({error}); expected '
                    '{"<id>": [category, ...], ...}. Delete it and it will be '
                    'rebuilt from human_parts/*.mat.'
                ) from error
            if all(i in cached for i in ids):
                return cached
        categories = {
            i: object_categories(
                self._path('human_parts', f'{i}.mat'),
                self.parts_area_threshold,
            )
            for i in ids
        }
        try:
            os.makedirs(osp.dirname(cache), exist_ok=True)
            handle, tmp = tempfile.mkstemp(
                dir=osp.dirname(cache), suffix='.tmp'
            )
            with os.fdopen(handle, 'w') as f:
                json.dump(categories, f)
            os.replace(tmp, cache)
        except OSError as error:
            warnings.warn(
                f'Could not write the parts cache {cache} ({error}); it is '
                'rebuilt from human_parts/*.mat each time the dataset is built.'
            )
        return categories
