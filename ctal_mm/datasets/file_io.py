"""Reading the files of the datasets, with errors that name the file and what was expected.

Every reader turns whatever a broken file raises (numpy, PIL, scipy) into a
:class:`DataFileError` that names the path, says what the file should hold and how to fix it, so a
corrupt or truncated file fails where it is read, not later inside torch.
"""

import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

FIX_HINT = 'Re-extract or re-download this file (see docs/dataset_prepare.md).'
# metres; NYUv2's Kinect depths stay below about 10 m. The default ``max_depth`` of the
# NYUv2 loaders (MTAN and NYUD-MT layouts)
DEFAULT_MAX_DEPTH = 20.0


class DataFileError(ValueError):
    """A dataset file is missing, unreadable, or holds the wrong shape, dtype or values."""


def require_file(path: str, what: str) -> None:
    """Raise :class:`DataFileError` if ``path`` is not a file.

    Args:
        path: the file.
        what: what the file should hold, for the message.
    """
    if not osp.isfile(path):
        raise DataFileError(
            f'{path}: file not found (expected {what}). {FIX_HINT}'
        )


def read_npy(path: str, what: str) -> np.ndarray:
    """A .npy array, read without pickles.

    Args:
        path: the .npy file.
        what: what the array should hold, for the messages.

    Raises:
        DataFileError: the file is missing, truncated, corrupt or holds no numeric array.
    """
    require_file(path, what)
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:  # numpy raises ValueError, EOFError, OSError...
        raise DataFileError(
            f'{path}: not a readable .npy array ({type(error).__name__}: '
            f'{error}); expected {what}. {FIX_HINT}'
        ) from error
    if not isinstance(array, np.ndarray) or not (
        np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.floating)
    ):
        dtype = getattr(array, 'dtype', type(array).__name__)
        raise DataFileError(
            f'{path}: holds dtype {dtype}; expected {what} as a real-valued '
            f'(integer or float) array. {FIX_HINT}'
        )
    return array


def read_pil(path: str, what: str, mode: Optional[str] = None) -> np.ndarray:
    """An image file (.jpg/.png...) decoded by PIL, optionally converted to ``mode``.

    Args:
        path: the image file.
        what: what the image should hold, for the messages.
        mode: a PIL mode to convert to ('RGB', 'L'), or None to keep the stored values (label
            PNGs: palette images give their indices).

    Raises:
        DataFileError: the file is missing, truncated or not an image.
    """
    require_file(path, what)
    try:
        with Image.open(path) as image:
            image.load()
            if mode is not None and image.mode != mode:
                image = image.convert(mode)
            return np.array(image)
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError
        raise DataFileError(
            f'{path}: not a readable image ({type(error).__name__}: {error}); '
            f'expected {what}. {FIX_HINT}'
        ) from error


def read_mat(path: str, what: str, keys: Sequence[str]) -> Dict[str, Any]:
    """The variables ``keys`` of a MATLAB .mat file.

    Args:
        path: the .mat file.
        what: what the file should hold, for the messages.
        keys: variables that must be present.

    Raises:
        DataFileError: the file is missing, truncated, or lacks one of ``keys``.
    """
    import scipy.io

    require_file(path, what)
    try:
        content = scipy.io.loadmat(path)
    except (
        Exception
    ) as error:  # scipy raises ValueError, TypeError, OSError...
        raise DataFileError(
            f'{path}: not a readable .mat file ({type(error).__name__}: '
            f'{error}); expected {what}. {FIX_HINT}'
        ) from error
    missing = [key for key in keys if key not in content]
    if missing:
        found = sorted(k for k in content if not k.startswith('__'))
        raise DataFileError(
            f'{path}: has no variable(s) {missing} (it has {found}); expected '
            f'{what}. {FIX_HINT}'
        )
    return content


def check_shape(
    array: np.ndarray,
    path: str,
    what: str,
    shape: Tuple[Optional[int], ...],
) -> np.ndarray:
    """``array`` if its shape matches ``shape`` (None = any size), else :class:`DataFileError`."""
    if array.ndim != len(shape) or any(
        want is not None and got != want
        for got, want in zip(array.shape, shape)
    ):
        expected = ' x '.join('N' if s is None else str(s) for s in shape)
        raise DataFileError(
            f'{path}: has shape {tuple(array.shape)}; expected {what} of shape '
            f'{expected}. {FIX_HINT}'
        )
    return array


def check_max_depth(
    depth: np.ndarray, path: str, what: str, max_depth: Optional[float]
) -> np.ndarray:
    """``depth`` if no value exceeds ``max_depth`` (None: no check), else
    :class:`DataFileError`: depths far beyond the sensor's range are another unit
    (millimetres for metres) or garbage, which would otherwise train silently."""
    if max_depth is not None and depth.size and depth.max() > max_depth:
        raise DataFileError(
            f"{path}: depths reach {depth.max():.4g}, above the dataset's "
            f'max_depth={max_depth:g}; expected {what}. These look like another '
            'unit (millimetres?) or corrupt values: convert the files, or raise '
            "the dataset's max_depth (None: no check) if such depths are real."
        )
    return depth


def read_id_list(path: str) -> List[str]:
    """The ids a split file lists, one per line (blank lines skipped).

    Raises:
        DataFileError: an id listed twice (it would be trained or scored twice), with
            the lines it is on.
    """
    lines: Dict[str, List[int]] = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                lines.setdefault(line.strip(), []).append(number)
    repeated = {i: at for i, at in lines.items() if len(at) > 1}
    if repeated:
        shown = '; '.join(
            f'{i!r} on lines {", ".join(map(str, at))}'
            for i, at in list(repeated.items())[:5]
        )
        more = f' ({len(repeated)} ids in all)' if len(repeated) > 5 else ''
        raise DataFileError(
            f'{path}: lists {len(repeated)} id(s) more than once: {shown}{more}. '
            'Each sample must be listed once: remove the repeated lines.'
        )
    return list(lines)
