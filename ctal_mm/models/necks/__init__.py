from .hrnet_fuse_neck import HRNetFuseNeck

__all__ = ['HRNetFuseNeck']
