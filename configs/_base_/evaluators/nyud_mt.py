# NYUD-MT (MTI-Net / ATRC / InvPT): semseg mIoU over the 40 classes, depth RMSE in metres over
# valid pixels of the whole split, mean normal angle (2 atan2 form, as InvPT's meter), edges as
# ODS-F of the BSDS matching at maximum distance 0.011 x image diagonal (the SEISM maxDist the
# ATRC and InvPT READMEs give for NYUD-v2), with the NMS of SEISM's pipeline as for PASCAL.
# Validation during training scores edges at 33 thresholds (ODS-F within 0.05 of the full
# protocol on the synthetic scenes, docs/benchmarks.md#edge-evaluation); tools/test.py
# (test_evaluator) keeps the benchmark's 99.
# delta_m needs your single-task numbers on this protocol, e.g. from the STL config:
# val_evaluator = dict(stl_baselines=dict(semseg=dict(mIoU=...), depth=dict(rmse=...),
#                                         normals=dict(mean=...), edge=dict(odsF=...)))
# (and the same for test_evaluator).
val_evaluator = dict(
    type='MultiTaskMetric',
    task_metrics=dict(
        semseg=dict(
            type='SegmentationMetric', num_classes=40, absent_classes='zero'
        ),
        depth=dict(type='DepthMetric'),
        normals=dict(type='NormalsMetric', angle='atan2'),
        edge=dict(
            type='EdgeMetric', max_dist=0.011, nms=True, num_thresholds=33
        ),
    ),
)
test_evaluator = dict(
    type='MultiTaskMetric',
    task_metrics=dict(
        semseg=dict(
            type='SegmentationMetric', num_classes=40, absent_classes='zero'
        ),
        depth=dict(type='DepthMetric'),
        normals=dict(type='NormalsMetric', angle='atan2'),
        edge=dict(
            type='EdgeMetric', max_dist=0.011, nms=True, num_thresholds=99
        ),
    ),
)
