from .autocast_optim_wrapper import AutocastOptimWrapper
from .jacobian_optim_wrapper import JacobianOptimWrapper

__all__ = ['AutocastOptimWrapper', 'JacobianOptimWrapper']
