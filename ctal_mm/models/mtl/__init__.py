from .jacobian_descent import (
    JacobianDescent,
    SharedFeatures,
    build_aggregator,
    group_task_losses,
)

__all__ = [
    'JacobianDescent',
    'SharedFeatures',
    'build_aggregator',
    'group_task_losses',
]
