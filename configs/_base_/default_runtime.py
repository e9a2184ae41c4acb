# Runtime shared by every ctal_mm config: scope, environment, hooks, logging, visualisation.
default_scope = 'ctal_mm'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # nccl on GPU clusters; tools/train.py switches to gloo when no GPU is present.
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend'),
]
# no fixed `name`: mmengine names the visualizer after the run (config name and start time), so
# several runners in one process (tools/demo.py) each write to their own work dir
visualizer = dict(type='MultiTaskVisualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=True, window_size=10)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)  # the reference trains with seed 0

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    # progress, losses and ETA every `interval` iterations
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # `save_best` is set per experiment: 'delta_m' where single-task baselines are configured.
    # ctal_mm's CheckpointHook: atomic files, exact resume (docs/reliability.md)
    checkpoint=dict(
        type='CheckpointHook', by_epoch=True, interval=10, max_keep_ckpts=3
    ),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # generators seeded from (seed, epoch) before every epoch: resumes continue exactly
    epoch_seed=dict(type='EpochSeedHook'),
    visualization=dict(type='MultiTaskVisualizationHook', interval=50),
    # docs/reliability.md: config mistakes reported before the first step, non-finite losses
    # stop training ('skip' skips the step), unreadable samples (skip_unreadable) counted
    config_check=dict(type='ConfigCheckHook'),
    non_finite=dict(type='NonFiniteLossHook', on_non_finite='stop'),
    skipped_samples=dict(type='SkippedSampleHook'),
    # SIGTERM / SIGUSR1: checkpoint after the current iteration, exit 75 to be requeued
    # (docs/train_cluster.md)
    preemption=dict(type='PreemptionHook'),
)
# tools/test.py --tta and the demos' --tta: averages the views of tta_pipeline (the dataset
# configs' flip views; without one, the test pipeline and its mirror)
tta_model = dict(type='MultiTaskTTAModel')
