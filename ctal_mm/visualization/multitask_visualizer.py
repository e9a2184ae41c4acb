"""MultiTaskVisualizer: one panel per sample with every task's ground truth and prediction."""

from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmengine.dist import master_only
from mmengine.visualization import Visualizer

from ctal_mm.registry import VISUALIZERS
from ctal_mm.structures import (
    MultiTaskDataSample,
    class_names,
    class_palette,
    get_task_kind,
    task_display_order,
    task_kinds_of,
)
from ctal_mm.utils.misc import to_numpy

from .panel import Tile, compose_panel, placeholder
from .task_drawers import DrawStyle, get_task_drawer

ROLE_NAMES = {'gt': 'gt', 'pred': 'pred'}
MISSING_TEXT = {'gt': 'no ground truth', 'pred': 'no prediction'}


def as_rgb_uint8(image: Union[np.ndarray, torch.Tensor]) -> np.ndarray:
    """An RGB image in any common layout as H x W x 3 uint8.

    Accepts H x W x 3, 3 x H x W (a packed input tensor), H x W or H x W x 1 (gray); uint8 or
    float. Floats are taken as 0..255, except float images whose values all lie in [0, 1],
    which are taken as 0..1 (NYUv2's preprocessed .npy images are stored so).
    """
    array = to_numpy(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] > 3:
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise ValueError(
            f'The image to draw has shape {tuple(array.shape)}; expected '
            'H x W x 3 RGB (or 3 x H x W, H x W).'
        )
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    array = np.nan_to_num(array.astype(np.float32))
    if array.size and array.min() >= 0.0 and array.max() <= 1.0:
        array = array * 255.0
    return np.clip(np.round(array), 0, 255).astype(np.uint8)


def resize_nearest(data: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a C x H x W array of any dtype to ``shape`` (H, W)."""
    height, width = data.shape[-2:]
    if (height, width) == tuple(shape):
        return data
    rows = np.minimum(
        (np.arange(shape[0]) + 0.5) * height / shape[0], height - 1
    ).astype(np.int64)
    cols = np.minimum(
        (np.arange(shape[1]) + 0.5) * width / shape[1], width - 1
    ).astype(np.int64)
    return data[..., rows[:, None], cols[None, :]]


def resize_image(image: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    if image.shape[:2] == tuple(shape):
        return image
    return mmcv.imresize(image, (shape[1], shape[0]), interpolation='bilinear')


@VISUALIZERS.register_module()
class MultiTaskVisualizer(Visualizer):
    """Draws a sample's image and, per task, ground truth beside prediction in one panel.

    Layout: with both ground truth and prediction, the image sits on top and each task is a row
    of two tiles, ``<task> gt | <task> pred``; with only one of them (e.g. browsing a dataset) the
    image and the tasks' tiles fill a grid of at most ``max_columns`` columns. Every tile is
    titled. A map the sample lacks shows as a gray "no ground truth" / "no prediction" tile.

    Each task is drawn by the drawer its kind names (``TaskKind.drawer``, the functions of
    :mod:`ctal_mm.visualization.task_drawers`: segmentation: palette blended on the image,
    ignore black; depth: colour map with one range for gt and pred, invalid black; normals:
    RGB = (n + 1) / 2; edge and saliency: gray levels).

    Colours and names come from ``dataset_meta`` (set it as in MMSegmentation:
    ``visualizer.dataset_meta = dataset.metainfo``) through
    :mod:`ctal_mm.structures.dataset_meta` (``<task>_palette`` / ``<task>_classes``, and for
    ``semseg`` MMSeg's ``palette`` / ``classes``); missing palettes are generated
    deterministically. Task kinds come from the sample's ``task_kinds`` meta, then
    ``dataset_meta['task_kinds']``, then the usual kinds of the reference datasets' task names.

    Args:
        name: name of the instance.
        image: an image to start with (as mmengine's Visualizer).
        vis_backends: visualisation backend configs (as mmengine's Visualizer).
        save_dir: directory the backends save into.
        alpha: opacity of segmentation colours over the image.
        colormap: matplotlib colormap for depth.
        max_columns: columns of the grid when only gt or only pred is drawn.
        tasks: the tasks to draw, in order; by default every task the sample has.
        **kwargs: passed to mmengine's Visualizer (``fig_save_cfg``, ``fig_show_cfg``).

    Example:
        >>> vis = MultiTaskVisualizer()
        >>> vis.dataset_meta = dict(palette=[[0, 0, 0], [255, 0, 0]])
        >>> sample = MultiTaskDataSample()
        >>> sample.set_gt('semseg', torch.zeros(1, 8, 8, dtype=torch.long))
        >>> sample.set_pred('semseg', torch.ones(1, 8, 8, dtype=torch.long))
        >>> panel = vis.add_datasample('demo', np.zeros((8, 8, 3), np.uint8), sample)
    """

    def __init__(
        self,
        name: str = 'visualizer',
        image: Optional[np.ndarray] = None,
        vis_backends: Optional[List[dict]] = None,
        save_dir: Optional[str] = None,
        alpha: float = 0.6,
        colormap: str = 'viridis',
        max_columns: int = 4,
        tasks: Optional[Sequence[str]] = None,
        **kwargs,
    ):
        super().__init__(name, image, vis_backends, save_dir, **kwargs)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(
                f'MultiTaskVisualizer(alpha={alpha}): alpha is the opacity of '
                'the segmentation colours and must lie in [0, 1].'
            )
        if max_columns < 1:
            raise ValueError(
                f'MultiTaskVisualizer(max_columns={max_columns}) must be >= 1.'
            )
        self.alpha = alpha
        self.colormap = colormap
        self.max_columns = max_columns
        self.tasks = list(tasks) if tasks is not None else None

    # -- what to draw -------------------------------------------------------------------------

    def _meta(self) -> Mapping:
        return self.dataset_meta or {}

    def _task_kinds(self, sample: Optional[MultiTaskDataSample]) -> Dict:
        return task_kinds_of(
            None if sample is None else sample.metainfo, self._meta()
        )

    def _tasks_to_draw(
        self, sample: MultiTaskDataSample, roles: Sequence[str], kinds: Dict
    ) -> List[str]:
        if self.tasks is not None:
            return list(self.tasks)
        present = set(sample.metainfo.get('task_kinds') or {})
        if 'gt' in roles:
            present.update(sample.gt_tasks)
        if 'pred' in roles:
            present.update(sample.pred_tasks)
        return task_display_order(present, kinds)

    def _style(self, task: str, with_labels: bool) -> DrawStyle:
        palette = class_palette(self._meta(), task)
        return DrawStyle(
            task=task,
            palette=None if palette is None else np.asarray(palette),
            classes=class_names(self._meta(), task),
            alpha=self.alpha,
            with_labels=with_labels,
            colormap=self.colormap,
        )

    # -- drawing ------------------------------------------------------------------------------

    def draw_panel(
        self,
        image: Union[np.ndarray, torch.Tensor],
        data_sample: Optional[MultiTaskDataSample] = None,
        draw_gt: bool = True,
        draw_pred: bool = True,
        with_labels: bool = True,
    ) -> np.ndarray:
        """The panel of one sample as an H x W x 3 uint8 RGB array (nothing is recorded).

        Args:
            image: the sample's image (see :func:`as_rgb_uint8` for accepted layouts); resized to
                the maps' size if it differs.
            data_sample: the sample with ``gt_<task>`` / ``pred_<task>`` maps.
            draw_gt: draw the ground-truth maps.
            draw_pred: draw the predicted maps.
            with_labels: write class names on segmentation tiles.
        """
        image = as_rgb_uint8(image)
        if data_sample is None:
            return compose_panel([[Tile('image', image)]])
        kinds = self._task_kinds(data_sample)
        roles = []
        if draw_gt and data_sample.gt_tasks:
            roles.append('gt')
        if draw_pred and data_sample.pred_tasks:
            roles.append('pred')
        tasks = self._tasks_to_draw(data_sample, roles, kinds)
        if not roles or not tasks:
            return compose_panel([[Tile('image', image)]])

        maps = {
            task: {
                role: to_numpy(getattr(data_sample, f'{role}_{task}').data)
                for role in roles
                if f'{role}_{task}' in data_sample
            }
            for task in tasks
        }
        shape = next(
            (m.shape[-2:] for per in maps.values() for m in per.values()),
            image.shape[:2],
        )
        shape = tuple(int(s) for s in shape)
        image = resize_image(image, shape)

        task_rows = []
        for task in tasks:
            present = {
                r: resize_nearest(m, shape) for r, m in maps[task].items()
            }
            tiles = {}
            note = ''
            if present:
                kind = get_task_kind(task, kinds)
                drawing = get_task_drawer(kind.drawer)(
                    image, present, self._style(task, with_labels)
                )
                tiles, note = drawing.tiles, drawing.note
            row = []
            for role in roles:
                title = f'{task} {ROLE_NAMES[role]}'
                if note:
                    title += f' ({note})'
                tile = tiles.get(role)
                if tile is None:
                    tile = placeholder(shape, MISSING_TEXT[role])
                row.append(Tile(title, tile))
            task_rows.append(row)

        image_tile = Tile('image', image)
        if len(roles) == 2:
            return compose_panel(task_rows, header=image_tile)
        flat = [image_tile] + [row[0] for row in task_rows]
        cols = min(self.max_columns, len(flat))
        grid = [flat[i : i + cols] for i in range(0, len(flat), cols)]
        return compose_panel(grid)

    @master_only
    def add_datasample(
        self,
        name: str,
        image: Union[np.ndarray, torch.Tensor],
        data_sample: Optional[MultiTaskDataSample] = None,
        draw_gt: bool = True,
        draw_pred: bool = True,
        show: bool = False,
        wait_time: float = 0,
        out_file: Optional[str] = None,
        step: int = 0,
        with_labels: bool = True,
    ) -> np.ndarray:
        """Draw one sample's panel and record it, as MMSegmentation's visualizer does.

        With ``show`` the panel is shown in a window; with ``out_file`` it is written there (PNG
        or any format OpenCV writes), otherwise it goes to every visualisation backend through
        ``add_image(name, panel, step)``.

        Args:
            name: the image identifier for the backends and the window title.
            image: the sample's image, RGB.
            data_sample: the sample with ``gt_<task>`` / ``pred_<task>`` maps.
            draw_gt: draw the ground-truth maps.
            draw_pred: draw the predicted maps.
            show: show the panel in a window.
            wait_time: seconds to show it for (0: until a key is pressed).
            out_file: write the panel to this file instead of the backends.
            step: the global step recorded with the image.
            with_labels: write class names on segmentation tiles.

        Returns:
            The panel, H x W x 3 uint8 RGB.
        """
        panel = self.draw_panel(
            image, data_sample, draw_gt, draw_pred, with_labels
        )
        self.set_image(panel)
        if show:
            self.show(panel, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(panel), out_file)
        else:
            self.add_image(name, panel, step)
        return panel
