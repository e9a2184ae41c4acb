"""Install ctal_mm. Dependencies are pinned in requirements/; tools/bootstrap.sh installs them."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    scope = {}
    with open(osp.join(HERE, 'ctal_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def parse_requirements(name):
    """Requirement lines of requirements/<name>.txt, without comments and -r includes."""
    with open(osp.join(HERE, 'requirements', name)) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith('-')]


setup(
    name='ctal_mm',
    version=read_version(),
    description='Cross-Task Affinity Learning for multitask dense prediction, on MMEngine',
    long_description=open(osp.join(HERE, 'README.md')).read() if osp.exists(
        osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
    python_requires='>=3.9',
    install_requires=parse_requirements('runtime.txt'),
    extras_require={
        'tests': parse_requirements('tests.txt'),
        'mim': parse_requirements('mminstall.txt'),
        'openmmlab': parse_requirements('mminstall_openmmlab.txt'),
    },
    license='Apache-2.0',
    zip_safe=False,
)
