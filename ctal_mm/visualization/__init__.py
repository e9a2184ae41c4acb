from .multitask_visualizer import MultiTaskVisualizer, as_rgb_uint8
from .panel import Tile, compose_panel
from .task_drawers import (
    TASK_DRAWERS,
    DrawStyle,
    TaskDrawing,
    generated_palette,
    get_task_drawer,
    register_task_drawer,
)

__all__ = [
    'MultiTaskVisualizer',
    'as_rgb_uint8',
    'Tile',
    'compose_panel',
    'TASK_DRAWERS',
    'DrawStyle',
    'TaskDrawing',
    'generated_palette',
    'get_task_drawer',
    'register_task_drawer',
]
