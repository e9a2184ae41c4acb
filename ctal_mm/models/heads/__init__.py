from .task_heads import BottleneckTaskHead, DeepLabTaskHead, HRNetTaskHead

__all__ = ['BottleneckTaskHead', 'DeepLabTaskHead', 'HRNetTaskHead']
