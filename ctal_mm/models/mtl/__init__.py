from .jacobian_descent import (
    JacobianDescent,
    build_aggregator,
    group_task_losses,
)

__all__ = ['JacobianDescent', 'build_aggregator', 'group_task_losses']
