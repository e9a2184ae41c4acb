"""Registering ctal_mm's modules and making ctal_mm the default scope."""

import datetime
import warnings

from mmengine import DefaultScope

from .compat import install_safe_checkpoint_loading


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every ctal_mm module so its components are registered.

    Args:
        init_default_scope: also make ``ctal_mm`` the default registry scope, so that
            ``type='NYUv2Dataset'`` in a config resolves to ours. Configs set
            ``default_scope='ctal_mm'`` themselves; this is for scripts that build components
            without a Runner.
    """
    import ctal_mm.apis  # noqa: F401
    import ctal_mm.datasets  # noqa: F401
    import ctal_mm.engine  # noqa: F401
    import ctal_mm.evaluation  # noqa: F401
    import ctal_mm.models  # noqa: F401
    import ctal_mm.structures  # noqa: F401
    import ctal_mm.visualization  # noqa: F401

    install_safe_checkpoint_loading()

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None or not DefaultScope.check_instance_created('ctal_mm'):
        DefaultScope.get_instance('ctal_mm', scope_name='ctal_mm')
    elif current.scope_name != 'ctal_mm':
        warnings.warn(
            f'The default scope was "{current.scope_name}"; '
            'register_all_modules makes it "ctal_mm".'
        )
        DefaultScope.get_instance(
            f'ctal_mm-{datetime.datetime.now()}', scope_name='ctal_mm'
        )
