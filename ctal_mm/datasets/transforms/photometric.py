"""Photometric transforms: they change the image only, never a task map."""

import numpy as np
from mmseg.datasets.transforms import PhotoMetricDistortion

from ctal_mm.registry import TRANSFORMS


@TRANSFORMS.register_module()
class MultiTaskPhotoMetricDistortion(PhotoMetricDistortion):
    """mmseg's PhotoMetricDistortion (brightness, contrast, saturation, hue) on our images.

    mmseg's transform works on uint8 images on the 0..255 scale, and its saturation and hue steps
    go through HSV assuming BGR. Both are fine for ctal_mm's images:

    * float32 images on the 0..255 scale (MTAN .npy) are rounded to uint8 first, then the
      result is returned as float32 again (mmseg itself would otherwise run its HSV conversion on
      float data, which OpenCV reads on a 0..1 scale);
    * on RGB data the saturation step is unchanged (saturation does not depend on channel order)
      and the hue step rotates hue the other way round, by a delta drawn symmetrically around 0,
      so the distribution of distortions is the same.

    Arguments are mmseg's: ``brightness_delta=32``, ``contrast_range=(0.5, 1.5)``,
    ``saturation_range=(0.5, 1.5)``, ``hue_delta=18`` (the PASCAL reference's values).
    """

    def transform(self, results: dict) -> dict:
        img = results['img']
        was_float = img.dtype != np.uint8
        if was_float:
            results['img'] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        results = super().transform(results)
        if was_float:
            results['img'] = results['img'].astype(np.float32)
        return results
