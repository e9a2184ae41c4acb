"""Gradient-level multitask methods (model.aggregator + JacobianOptimWrapper)."""

import copy

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from ctal_mm.engine.optimizers import JacobianOptimWrapper
from ctal_mm.models.mtl import JacobianDescent, build_aggregator

X = torch.tensor([1.0, 2.0])
U_A = torch.tensor([1.0, 0.5])
U_B = torch.tensor([-2.0, 0.25])  # u_a . u_b < 0: the task gradients conflict


class TwoTaskToy(BaseModel):
    """L_a = u_a . (W x), L_b = s * u_b . (W x): shared W, task heads u_a, u_b.

    dL_a/dW = u_a x^T, dL_b/dW = s u_b x^T, dL_t/du_t = W x (closed forms).
    """

    def __init__(self, aggregator, loss_factor=1.0):
        super().__init__()
        self.backbone = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.backbone.weight.copy_(torch.tensor([[0.5, -1.0], [2.0, 1.0]]))
        self.heads = nn.ParameterDict(
            dict(a=nn.Parameter(U_A.clone()), b=nn.Parameter(U_B.clone()))
        )
        self.loss_factor = loss_factor
        self.jacobian_descent = JacobianDescent(
            aggregator, ['a', 'b'], ['backbone']
        )

    def forward(self, inputs, data_samples=None, mode='tensor'):
        z = self.backbone(inputs).float()  # float32 losses, as the real ones
        losses = {
            'final.a.loss': (z @ self.heads['a']).mean(),
            'final.b.loss': self.loss_factor * (z @ self.heads['b']).mean(),
        }
        return losses


class OneSample(torch.utils.data.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, i):
        return dict(inputs=X.clone())


def pcgrad(g1, g2):
    dot = (g1 * g2).sum()
    if dot >= 0:
        return g1 + g2
    p1 = g1 - dot / (g2 * g2).sum() * g2
    p2 = g2 - dot / (g1 * g1).sum() * g1
    return p1 + p2


def mgda(g1, g2):
    # the min-norm point of the segment [g1, g2]
    w = ((g2 - g1) * g2).sum() / ((g1 - g2) ** 2).sum()
    w = w.clamp(0, 1)
    return w * g1 + (1 - w) * g2


def _train_one_step(tmp_path, method):
    model = TwoTaskToy(dict(type=method))
    before = copy.deepcopy(model.state_dict())
    runner = Runner(
        model=model,
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=OneSample(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=1,
            collate_fn=dict(type='default_collate'),
        ),
        train_cfg=dict(by_epoch=False, max_iters=1),
        optim_wrapper=dict(
            type='JacobianOptimWrapper',
            optimizer=dict(type='SGD', lr=1.0, momentum=0.0),
        ),
        default_hooks=dict(checkpoint=None),
        default_scope='ctal_mm',
    )
    runner.train()
    after = model.state_dict()
    return {k: before[k] - after[k] for k in before}  # lr 1: the gradient


@pytest.mark.parametrize(
    'method, closed_form', [('PCGrad', pcgrad), ('MGDA', mgda)]
)
def test_runner_step_applies_the_closed_form(tmp_path, method, closed_form):
    grad = _train_one_step(tmp_path, method)
    W = torch.tensor([[0.5, -1.0], [2.0, 1.0]])
    g_a, g_b = torch.outer(U_A, X), torch.outer(U_B, X)
    expected = closed_form(g_a.reshape(-1), g_b.reshape(-1)).view(2, 2)
    assert not torch.allclose(expected, g_a + g_b)  # the method changes it
    torch.testing.assert_close(
        grad['backbone.weight'], expected, rtol=1e-5, atol=1e-6
    )
    # task-specific parameters keep their own task's gradient
    torch.testing.assert_close(grad['heads.a'], W @ X)
    torch.testing.assert_close(grad['heads.b'], W @ X)


def test_fp16_overflowing_task_gradient_skips_the_step():
    # L_b is finite in float32 but its gradient overflows float16
    model = TwoTaskToy(dict(type='UPGrad'), loss_factor=1e34)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    wrapper = JacobianOptimWrapper(
        dtype='float16',
        loss_scale=dict(init_scale=1024.0),
        optimizer=optimizer,
    )
    before = copy.deepcopy(model.state_dict())
    scale = wrapper.loss_scaler.get_scale()
    model.train_step(dict(inputs=X[None]), wrapper)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert wrapper.skipped_steps == 1
    assert wrapper.loss_scaler.get_scale() == scale / 2  # backed off
    # a finite step then trains
    model.loss_factor = 1.0
    model.train_step(dict(inputs=X[None]), wrapper)
    assert not torch.equal(model.backbone.weight, before['backbone.weight'])
    assert wrapper.skipped_steps == 1


def test_missing_optional_extra_names_the_pip_command(monkeypatch):
    import torchjd._mixins

    real = torchjd._mixins.find_spec
    monkeypatch.setattr(
        torchjd._mixins,
        'find_spec',
        lambda name: None if name == 'cvxpy' else real(name),
    )
    for cfg in (dict(type='CAGrad', c=0.5), dict(type='NashMTL')):
        with pytest.raises(ImportError) as info:
            build_aggregator(cfg, num_tasks=3)
        message = str(info.value)
        assert 'cvxpy' in message, message
        assert 'pip install -r requirements/optional.txt' in message
        assert 'pip install "torchjd[cagrad]"' in message


def test_bad_aggregator_config_is_a_clear_error():
    with pytest.raises(KeyError, match='not a torchjd aggregator'):
        build_aggregator(dict(type='PCGradd'), 2)
    with pytest.raises(TypeError, match='arguments are those'):
        build_aggregator(dict(type='MGDA', nonsense=1), 2)
    with pytest.raises(ValueError, match='no Gramian'):
        JacobianDescent(dict(type='GradDrop', gramian=True), ['a', 'b'])


def test_gramian_path_matches_the_jacobian_path():
    grads = []
    for gramian in (False, True):
        model = TwoTaskToy(dict(type='UPGrad'))
        if gramian:
            model.jacobian_descent = JacobianDescent(
                dict(type='UPGrad', gramian=True), ['a', 'b'], ['backbone']
            )
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        wrapper = JacobianOptimWrapper(optimizer=optimizer)
        before = copy.deepcopy(model.state_dict())
        model.train_step(dict(inputs=X[None]), wrapper)
        grads.append({k: before[k] - v for k, v in model.state_dict().items()})
    for key in grads[0]:
        torch.testing.assert_close(grads[1][key], grads[0][key], msg=key)


def test_amp_flag_sets_the_wrappers_dtype():
    from mmengine.config import Config

    from ctal_mm.engine.launch import enable_amp

    cfg = Config(dict(optim_wrapper=dict(type='JacobianOptimWrapper')))
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'JacobianOptimWrapper'
    expected = 'float16' if torch.cuda.is_available() else 'bfloat16'
    assert cfg.optim_wrapper.dtype == expected


def test_bf16_autocast_step_trains():
    model = TwoTaskToy(dict(type='UPGrad'))
    wrapper = JacobianOptimWrapper(
        dtype='bfloat16', optimizer=torch.optim.SGD(model.parameters(), lr=0.1)
    )
    before = model.backbone.weight.detach().clone()
    model.train_step(dict(inputs=X[None]), wrapper)
    assert not torch.equal(model.backbone.weight, before)
    assert torch.isfinite(model.backbone.weight).all()


class ThreeTaskToy(BaseModel):
    """backbone -> neck -> features z -> one head per task, non-linear losses.

    ``record`` makes the forward hand z to the wrapper (the split backward);
    without it the wrapper falls back to one backward pass per task.
    """

    def __init__(self, aggregator, shared, record=True):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Sequential(nn.Linear(2, 3), nn.Tanh())
        self.neck = nn.Linear(3, 3)
        self.heads = nn.ModuleDict({t: nn.Linear(3, 1) for t in 'abc'})
        self.jacobian_descent = JacobianDescent(
            aggregator, list('abc'), shared
        )
        self.record = record

    def forward(self, inputs, data_samples=None, mode='tensor'):
        z = self.neck(self.backbone(inputs))
        if self.record:
            self.jacobian_descent.record_features(
                z, [self.backbone, self.neck]
            )
        return {
            'final.a.loss': self.heads['a'](z).pow(2).mean(),
            'final.b.loss': torch.sin(self.heads['b'](z)).mean(),
            'final.c.loss': self.heads['c'](z.relu()).exp().mean(),
        }


def _one_step_grads(model, batch):
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    wrapper = JacobianOptimWrapper(optimizer=optimizer)
    before = copy.deepcopy(model.state_dict())
    model.train_step(dict(inputs=batch), wrapper)
    return {k: before[k] - v for k, v in model.state_dict().items()}


@pytest.mark.parametrize('shared', [['backbone'], ['backbone', 'neck']])
@pytest.mark.parametrize('chunk', [1, None, 2])
def test_split_backward_equals_one_backward_per_task(shared, chunk):
    batch = torch.randn(4, 2, generator=torch.Generator().manual_seed(1))
    aggregator = dict(type='UPGrad', parallel_chunk_size=chunk)
    reference = _one_step_grads(
        ThreeTaskToy(aggregator, shared, record=False), batch
    )
    split = _one_step_grads(ThreeTaskToy(aggregator, shared), batch)
    assert not torch.allclose(  # UPGrad changes the shared gradient
        reference['backbone.0.weight'],
        _one_step_grads(
            ThreeTaskToy(dict(type='Sum'), shared, record=False), batch
        )['backbone.0.weight'],
    )
    for key in reference:
        torch.testing.assert_close(
            split[key], reference[key], rtol=1e-5, atol=1e-6, msg=key
        )


def test_feature_jacobian_aggregates_the_feature_gradients():
    # z = W x; dL_a/dz = u_a, dL_b/dz = u_b: MGDA combines them at z, and W gets
    # mgda(u_a, u_b) x^T (one backward pass through the backbone)
    model = TwoTaskToy(dict(type='MGDA', jacobian='features'))

    def forward(inputs, data_samples=None, mode='tensor'):
        z = model.backbone(inputs)
        model.jacobian_descent.record_features(z, [model.backbone])
        return {
            'final.a.loss': (z @ model.heads['a']).mean(),
            'final.b.loss': (z @ model.heads['b']).mean(),
        }

    model.forward = forward
    grad = _one_step_grads(model, X[None])
    W = torch.tensor([[0.5, -1.0], [2.0, 1.0]])
    expected = torch.outer(mgda(U_A, U_B), X)
    assert not torch.allclose(expected, torch.outer(U_A + U_B, X))
    torch.testing.assert_close(grad['backbone.weight'], expected)
    torch.testing.assert_close(grad['heads.a'], W @ X)
    torch.testing.assert_close(grad['heads.b'], W @ X)


def test_feature_jacobian_needs_recorded_features():
    model = TwoTaskToy(dict(type='UPGrad', jacobian='features'))
    with pytest.raises(RuntimeError, match='recorded no'):
        _one_step_grads(model, X[None])


def test_bad_jacobian_options_are_clear_errors():
    with pytest.raises(ValueError, match='jacobian must be one of'):
        JacobianDescent(dict(type='UPGrad', jacobian='feature'), ['a', 'b'])
    with pytest.raises(ValueError, match='parallel_chunk_size'):
        JacobianDescent(dict(type='UPGrad', parallel_chunk_size=0), ['a'])
    with pytest.raises(ValueError, match='exclude each other'):
        JacobianDescent(
            dict(type='UPGrad', jacobian='features', gramian=True), ['a']
        )


@pytest.mark.parametrize('jacobian', ['parameters', 'features'])
def test_fp16_split_backward_skips_a_step_with_an_overflowing_task(jacobian):
    # the split path (features recorded): task b's loss is finite in float32, but
    # its gradient overflows float16 at the features, so the step is skipped
    torch.manual_seed(0)
    model = ThreeTaskToy(dict(type='UPGrad', jacobian=jacobian), ['backbone'])
    forward = model.forward
    factor = dict(b=1e34)

    def scaled_forward(*args, **kwargs):
        losses = forward(*args, **kwargs)
        return {
            key: loss.float()
            * factor.get(next(t for t in 'abc' if f'.{t}.' in key), 1.0)
            for key, loss in losses.items()
        }

    model.forward = scaled_forward
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    wrapper = JacobianOptimWrapper(
        dtype='float16',
        loss_scale=dict(init_scale=1024.0),
        optimizer=optimizer,
    )
    batch = torch.randn(4, 2, generator=torch.Generator().manual_seed(1))
    split_calls = []
    real_split = wrapper._split_backward
    wrapper._split_backward = lambda *a: (
        split_calls.append(1) or real_split(*a)
    )
    before = copy.deepcopy(model.state_dict())
    model.train_step(dict(inputs=batch), wrapper)
    assert split_calls  # the features were recorded: the split path ran
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert wrapper.skipped_steps == 1
    assert wrapper.loss_scaler.get_scale() == 512.0
    factor['b'] = 1.0  # a finite step then trains
    model.train_step(dict(inputs=batch), wrapper)
    assert len(split_calls) == 2 and wrapper.skipped_steps == 1
    assert not torch.equal(
        model.backbone[0].weight, before['backbone.0.weight']
    )


class _OutBmm(torch.autograd.Function):
    """x @ w with a hand-written backward using out=, which torch.vmap cannot batch
    (as CTAL's factored affinity)."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x @ w

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        grad_x = torch.empty_like(x)
        torch.mm(grad, w.t(), out=grad_x)
        return grad_x, x.t() @ grad


class MixingToy(ThreeTaskToy):
    """ThreeTaskToy with a cross-task mixing of z before the heads, written as _OutBmm."""

    def __init__(self, aggregator, shared, record=True):
        super().__init__(aggregator, shared, record)
        self.mix = nn.Parameter(torch.eye(3) + 0.1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        z = self.neck(self.backbone(inputs))
        if self.record:
            self.jacobian_descent.record_features(
                z, [self.backbone, self.neck]
            )
        m = _OutBmm.apply(z, self.mix)
        return {
            'final.a.loss': self.heads['a'](m).pow(2).mean(),
            'final.b.loss': torch.sin(self.heads['b'](m)).mean(),
            'final.c.loss': self.heads['c'](m.relu()).exp().mean(),
        }


@pytest.mark.parametrize('shared', [['backbone'], ['backbone', 'neck']])
@pytest.mark.parametrize('method', ['UPGrad', 'MGDA'])
def test_split_gramian_path_equals_the_jacobian_path(shared, method):
    # the recorded features route the Gramian through <dL_t/dz, z>: the engine's
    # batched backward never meets the out= backward after z, which it cannot batch
    batch = torch.randn(4, 2, generator=torch.Generator().manual_seed(1))
    jacobian = _one_step_grads(MixingToy(dict(type=method), shared), batch)
    gramian = _one_step_grads(
        MixingToy(dict(type=method, gramian=True), shared), batch
    )
    summed = _one_step_grads(MixingToy(dict(type='Sum'), shared), batch)
    assert not torch.allclose(
        jacobian['backbone.0.weight'], summed['backbone.0.weight']
    )
    for key in jacobian:
        torch.testing.assert_close(
            gramian[key], jacobian[key], rtol=1e-4, atol=1e-6, msg=key
        )


def test_whole_graph_gramian_cannot_batch_an_out_backward():
    # why the split exists: without recorded features the engine's vmap fails
    batch = torch.randn(4, 2, generator=torch.Generator().manual_seed(1))
    model = MixingToy(
        dict(type='UPGrad', gramian=True), ['backbone'], record=False
    )
    with pytest.raises(RuntimeError, match='out='):
        _one_step_grads(model, batch)
