# The synthetic scenes: a metric for every task the scenes have; the configs' task lists choose.
val_evaluator = dict(
    type='MultiTaskMetric',
    task_metrics=dict(
        semseg=dict(type='SegmentationMetric', num_classes=9),
        depth=dict(type='DepthMetric'),
        normals=dict(type='NormalsMetric'),
    ),
)
test_evaluator = val_evaluator
