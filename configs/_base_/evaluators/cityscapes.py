# Cityscapes, MTAN protocol (19 classes) as the CTAL CNN reference scores it.
val_evaluator = dict(
    type='MultiTaskMetric',
    task_metrics=dict(
        semseg=dict(
            type='SegmentationMetric', num_classes=19, absent_classes='exclude'
        ),
        depth=dict(type='DepthMetric'),
    ),
)
test_evaluator = val_evaluator
