"""The repository's scripts (tools/, helpers of other test folders), imported
by path: they are not in a package."""

import importlib.util
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_script(path):
    """The module of the script at ``path`` (relative to the repository root,
    or absolute), executed afresh."""
    path = osp.join(REPO, path)
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
