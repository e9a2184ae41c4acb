"""Fixtures: tiny datasets in the real layouts, written to tmp_path (see dataset_layouts.py)."""

import pytest
from dataset_layouts import cityscapes_tree, make_pascal, nyuv2_tree

from ctal_mm.utils import register_all_modules


@pytest.fixture(scope='session', autouse=True)
def _register():
    register_all_modules(init_default_scope=False)


@pytest.fixture
def nyuv2_root(tmp_path):
    return nyuv2_tree(tmp_path)


@pytest.fixture
def cityscapes_root(tmp_path):
    return cityscapes_tree(tmp_path)


@pytest.fixture
def pascal_root(tmp_path):
    root = str(tmp_path / 'PASCAL_MT')
    return root, make_pascal(root)
