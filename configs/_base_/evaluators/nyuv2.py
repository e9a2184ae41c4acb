# NYUv2, MTAN protocol as the CTAL CNN reference scores it: mIoU with absent classes excluded,
# depth abs/rel error, normal angles (acos of the dot product). Add
# stl_baselines=dict(semseg=dict(mIoU=...), depth=dict(abs_err=...), normals=dict(mean=...))
# with your single-task numbers to get delta_m (and save the best checkpoint by it).
val_evaluator = dict(
    type='MultiTaskMetric',
    task_metrics=dict(
        semseg=dict(
            type='SegmentationMetric', num_classes=13, absent_classes='exclude'
        ),
        depth=dict(type='DepthMetric'),
        normals=dict(type='NormalsMetric', angle='acos'),
    ),
)
test_evaluator = val_evaluator
