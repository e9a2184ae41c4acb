from .task_heads import BottleneckTaskHead, DeepLabTaskHead

__all__ = ['BottleneckTaskHead', 'DeepLabTaskHead']
