# PASCAL-Context (PASCAL_MT, 5 tasks) as the transformer reference scores it, with the field's
# edge metric added: absent classes count 0, human parts only on images with people, saliency
# max F (without the reference's double sigmoid: set reference_double_sigmoid=True to compare
# with numbers published with it), normals mean angle, edges ODS-F at 0.0075 and the
# reference's BCE proxy.
# Validation during training scores edges at 33 thresholds (ODS-F within 0.05 of the full
# protocol on the synthetic scenes, docs/benchmarks.md#edge-evaluation); tools/test.py
# (test_evaluator) keeps the benchmark's 99.
val_evaluator = dict(
    type='MultiTaskMetric',
    task_metrics=dict(
        semseg=dict(
            type='SegmentationMetric', num_classes=21, absent_classes='zero'
        ),
        human_parts=dict(
            type='SegmentationMetric',
            num_classes=7,
            absent_classes='zero',
            only_images_with_labels=True,
        ),
        saliency=dict(type='SaliencyMetric'),
        normals=dict(type='NormalsMetric', angle='atan2'),
        edge=dict(
            type='EdgeMetric', max_dist=0.0075, nms=True, num_thresholds=33
        ),
    ),
)
test_evaluator = dict(
    type='MultiTaskMetric',
    task_metrics=dict(
        semseg=dict(
            type='SegmentationMetric', num_classes=21, absent_classes='zero'
        ),
        human_parts=dict(
            type='SegmentationMetric',
            num_classes=7,
            absent_classes='zero',
            only_images_with_labels=True,
        ),
        saliency=dict(type='SaliencyMetric'),
        normals=dict(type='NormalsMetric', angle='atan2'),
        edge=dict(
            type='EdgeMetric', max_dist=0.0075, nms=True, num_thresholds=99
        ),
    ),
)
