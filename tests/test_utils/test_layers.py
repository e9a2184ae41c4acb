"""The package's layers, read from the source: no package imports a higher
one, no two packages or modules import each other, and every registered class
is found through its registry's ``locations``."""

import ast
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from mmengine.registry import Registry

import ctal_mm.registry as registries
from ctal_mm.utils import register_all_modules

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / 'ctal_mm'

# lowest first (docs/architecture.md); packages of one rank may import each
# other as long as no cycle forms. model_converters (key tables, no ctal_mm
# import) sits with utils; testing (helpers of the tests and tools) with apis.
LAYERS = {
    'registry': 0,
    'version': 0,
    'structures': 1,
    'utils': 2,
    'model_converters': 2,
    'datasets': 3,
    'models': 3,
    'evaluation': 3,
    'visualization': 3,
    'engine': 4,
    'apis': 5,
    'testing': 5,
}
# imports every package so that their classes register: the one exception
EXEMPT_FUNCTIONS = {('ctal_mm.utils.setup_env', 'register_all_modules')}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def _imports(path: Path):
    """``[(imported ctal_mm module, line)]`` of one file, relative imports
    resolved, function-local imports included (they are edges too)."""
    module = _module_name(path)
    package = (
        module if path.name == '__init__.py' else module.rpartition('.')[0]
    )
    tree = ast.parse(path.read_text(), str(path))
    exempt = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and (module, node.name) in EXEMPT_FUNCTIONS
    ]
    skipped = {id(n) for f in exempt for n in ast.walk(f)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[
                    : len(package.split('.')) - node.level + 1
                ]
                prefix = '.'.join(base)
                target = f'{prefix}.{node.module}' if node.module else prefix
            else:
                target = node.module or ''
            # `from package import module` imports the module
            names = [target] + [f'{target}.{a.name}' for a in node.names]
        else:
            continue
        found += [
            (n, node.lineno) for n in names if n.split('.')[0] == 'ctal_mm'
        ]
    return found


def _source_modules():
    return {_module_name(p): p for p in sorted(PACKAGE.rglob('*.py'))}


def _module_graph():
    modules = _source_modules()
    graph = defaultdict(dict)  # module -> {imported module: line}
    for name, path in modules.items():
        for target, line in _imports(path):
            if target in modules and target != name:
                graph[name].setdefault(target, line)
    return modules, graph


def _package(module: str) -> str:
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else ''


def _cycle(graph):
    """One cycle of ``graph`` ({node: iterable of nodes}) as a list, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_every_package_has_a_layer():
    packages = {_package(m) for m in _source_modules()} - {''}
    assert packages <= set(LAYERS), (
        f'{sorted(packages - set(LAYERS))}: give the new package a layer in '
        'LAYERS (and docs/architecture.md).'
    )


def test_no_package_imports_a_higher_layer():
    modules, graph = _module_graph()
    upward = [
        f'{modules[src].relative_to(ROOT)}:{line} ({_package(src)}) imports '
        f'{dst} ({_package(dst)})'
        for src, targets in graph.items()
        for dst, line in targets.items()
        if _package(src)
        and _package(dst)
        and LAYERS[_package(dst)] > LAYERS[_package(src)]
    ]
    assert not upward, '\n'.join(upward)


def test_no_import_cycle_between_packages_or_modules():
    modules, graph = _module_graph()
    packages = defaultdict(set)
    for src, targets in graph.items():
        for dst in targets:
            if _package(src) and _package(dst) != _package(src):
                packages[_package(src)].add(_package(dst))
    assert _cycle(packages) is None, ' -> '.join(_cycle(packages))
    # a package's __init__ imports its modules by design; among the
    # modules themselves (and across packages) no cycle
    modules_only = {
        src: {d for d in targets if modules[d].name != '__init__.py'}
        for src, targets in graph.items()
        if modules[src].name != '__init__.py'
    }
    assert _cycle(modules_only) is None, ' -> '.join(_cycle(modules_only))


def test_the_checks_see_an_upward_import_and_a_cycle(tmp_path):
    # the reader resolves relative imports and finds function-local ones
    path = PACKAGE / 'models' / 'test_time_aug.py'
    targets = {t for t, _ in _imports(path)}
    assert 'ctal_mm.structures' in targets
    assert 'ctal_mm.registry.MODELS' in targets
    nested = PACKAGE / 'models' / 'decoders' / 'mctal.py'
    assert 'ctal_mm.models.decoders.ctal' in {t for t, _ in _imports(nested)}
    assert _cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert _cycle({'a': {'b'}, 'b': {'c'}}) is None
    exempt = {t for t, _ in _imports(PACKAGE / 'utils' / 'setup_env.py')}
    assert 'ctal_mm.apis' not in exempt


def _ctal_registries():
    return {
        name: value
        for name, value in vars(registries).items()
        if isinstance(value, Registry)
    }


def test_every_registered_class_lives_inside_its_registry_locations():
    register_all_modules(init_default_scope=False)
    outside = []
    for name, registry in _ctal_registries().items():
        locations = registry._locations
        for key, obj in registry.module_dict.items():
            module = obj.__module__
            if not module.startswith('ctal_mm.'):
                continue  # registered by a test
            if not any(
                module == loc or module.startswith(loc + '.')
                for loc in locations
            ):
                outside.append(f'{name}: {key} ({module}) not in {locations}')
    assert not outside, '\n'.join(outside)


FRESH_PROCESS = """
import json
from mmengine.registry import Registry
import ctal_mm.registry as registries
from ctal_mm.utils import register_all_modules

found = {}
for name, registry in vars(registries).items():
    if isinstance(registry, Registry):
        registry.import_from_location()
        found[name] = sorted(registry.module_dict)
register_all_modules(init_default_scope=False)
missing = {}
for name, registry in vars(registries).items():
    if isinstance(registry, Registry):
        late = sorted(set(registry.module_dict) - set(found[name]))
        if late:
            missing[name] = late
print(json.dumps(dict(found=found, missing=missing)))
"""


def test_building_from_a_config_needs_no_manual_import():
    """In a fresh process, a registry's ``locations`` alone register all of
    its classes: none appears only after importing the rest of ctal_mm."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, '-c', FRESH_PROCESS],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not result['missing'], result['missing']
    found = result['found']
    for registry, name in [
        ('HOOKS', 'PredictionFilesHook'),
        ('TRANSFORMS', 'LoadInferenceImage'),
        ('TRANSFORMS', 'ResizeToInputSize'),
        ('MODEL_WRAPPERS', 'CPUDistributedDataParallel'),
        ('INFERENCERS', 'MultiTaskInferencer'),
    ]:
        assert name in found[registry], (registry, name)


@pytest.mark.parametrize('name', ['TASK_UTILS'])
def test_unused_registries_are_gone(name):
    assert not hasattr(registries, name)
