"""Checkpoints that carry a hash of their contents, and refuse to load when damaged.

``torch.save`` writes a zip archive with one record per tensor storage and one
(``data.pkl``) for the structure and every non-tensor value (the metadata), and it
computes each record's CRC-32 while writing it. The content hash of a checkpoint is the
sha256 of the list of its records (name, size, CRC-32), so writing it costs no pass over
the tensors: it is read from the archive's central directory (a few kilobytes) and
stored in the archive as one more record, ``<archive>/.data/ctal_mm_content_hash``,
which ``torch.load`` ignores. Checking it recomputes every record's CRC-32 from the
bytes on disk (one pass over the file) and compares the hash of the recomputed list with
the stored one, so a changed byte in any tensor or in the metadata is found and the
damaged record named.

A CRC-32 finds every flipped byte and burst up to 32 bits, and any other accidental
change with probability 1 - 2**-32 per record; it is not proof against deliberate
changes. For that, released files carry their sha256 in their name
(``<name>-<first 8 hex digits of the sha256>.pth``, tools/misc/publish_model.py, as
torch hub and OpenMMLab name theirs), which :func:`verify_checkpoint` checks too.

The write side is ``ctal_mm.engine.checkpoint_files.write_checkpoint``; every load of a
checkpoint goes through :func:`ctal_mm.utils.compat.safe_torch_load`, which calls
:func:`verify_checkpoint`.
"""

import hashlib
import io
import json
import mmap
import os
import os.path as osp
import re
import struct
import zlib
from typing import BinaryIO, List, Optional, Tuple, Union
from zipfile import BadZipFile, ZipFile, ZipInfo

import torch
from mmengine.logging import print_log

HASH_RECORD = '.data/ctal_mm_content_hash'  # under the archive's top folder
HASH_ALGORITHM = 'sha256 of the records (name, size, CRC-32)'
# torch hub's convention, which OpenMMLab's released weights follow
NAME_HASH = re.compile(r'-([0-9a-f]{8,64})\.pth$')
ZIP_MAGIC = b'PK\x03\x04'
_LOCAL_HEADER = struct.Struct('<4s2B4HL2L2H')  # zipfile's structFileHeader
_CHUNK = 64 * 2**20


class CorruptCheckpointError(RuntimeError):
    """A checkpoint's bytes are not those it was saved with (or it is cut short)."""


def _records(archive: ZipFile) -> Tuple[List[ZipInfo], Optional[ZipInfo]]:
    """The archive's records without the hash record, and the hash record."""
    records, stored = [], None
    for info in archive.infolist():
        if info.filename.split('/', 1)[-1] == HASH_RECORD:
            stored = info
        else:
            records.append(info)
    return records, stored


def manifest_hash(entries: List[Tuple[str, int, int]]) -> str:
    """The content hash of records given as ``(name, size, crc32)``."""
    text = ''.join(
        f'{name}\t{size}\t{crc:08x}\n' for name, size, crc in entries
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _data_offset(buffer, info: ZipInfo) -> int:
    header = _LOCAL_HEADER.unpack_from(buffer, info.header_offset)
    name_length, extra_length = header[-2], header[-1]
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length


def add_content_hash(file: BinaryIO, data: Optional[bytes] = None) -> str:
    """Append the content hash record to the torch zip checkpoint open in ``file``.

    ``file``: the checkpoint just written, opened for reading and writing. Only the
    central directory is read, for the CRC-32s torch computed while saving; when torch
    was told not to compute them (``torch.serialization.set_crc32_options(False)``)
    they are computed here from ``data``, the bytes written. Returns the hash.
    """
    file.seek(0)
    with ZipFile(file, mode='a') as archive:
        records, stored = _records(archive)
        if stored is not None:
            raise ValueError(
                'the checkpoint already holds a content hash record'
            )
        if torch.serialization.get_crc32_options():
            entries = [(i.filename, i.file_size, i.CRC) for i in records]
        else:
            view = memoryview(data)
            entries = []
            for info in records:
                start = _data_offset(view, info)
                entries.append(
                    (
                        info.filename,
                        info.file_size,
                        zlib.crc32(view[start : start + info.compress_size]),
                    )
                )
        digest = manifest_hash(entries)
        prefix = records[0].filename.split('/', 1)[0]
        archive.writestr(
            f'{prefix}/{HASH_RECORD}',
            json.dumps(dict(algorithm=HASH_ALGORITHM, hash=digest)),
        )
    return digest


def _what(record: str) -> str:
    tail = record.split('/', 1)[-1]
    if tail == 'data.pkl':
        return "the checkpoint's structure and non-tensor values (meta)"
    if tail.startswith('data/'):
        return 'the bytes of a tensor'
    return 'a record torch writes'


def _verify_buffer(buffer, name: str) -> Optional[str]:
    """The stored hash when it matches ``buffer``'s contents; None when there is none."""
    try:
        # only the index is parsed by zipfile (an mmap has no `seekable`, which
        # zipfile's reading wants); records are read from the buffer directly
        archive = ZipFile(
            buffer if isinstance(buffer, mmap.mmap) else io.BytesIO(buffer)
        )
    except (BadZipFile, ValueError, OSError) as error:
        raise CorruptCheckpointError(
            f'Checkpoint {name} is truncated or damaged: it starts as a torch '
            f'zip checkpoint but its index cannot be read ({error}). Was it cut '
            'short by a partial copy, a full disk or a kill while saving? Use '
            'another copy or an earlier checkpoint (--resume without a path '
            'takes the newest complete one).'
        ) from error
    with archive:
        records, stored = _records(archive)
        if stored is None:
            return None
        try:
            start = _data_offset(buffer, stored)
            record = bytes(buffer[start : start + stored.compress_size])
            expected = json.loads(record)['hash']
        except (ValueError, KeyError, struct.error) as error:
            raise CorruptCheckpointError(
                f'Checkpoint {name}: its content hash record '
                f'{stored.filename} is damaged ({error}).'
            ) from error
        entries, damaged = [], []
        for info in records:
            try:
                start = _data_offset(buffer, info)
            except struct.error as error:
                raise CorruptCheckpointError(
                    f'Checkpoint {name} is truncated: record {info.filename} '
                    'lies beyond its end.'
                ) from error
            end = start + info.compress_size
            if end > len(buffer):
                raise CorruptCheckpointError(
                    f'Checkpoint {name} is truncated: record {info.filename} '
                    f'ends at byte {end}, the file has {len(buffer)}.'
                )
            crc = 0
            for at in range(start, end, _CHUNK):
                crc = zlib.crc32(buffer[at : min(at + _CHUNK, end)], crc)
            if crc != info.CRC:
                damaged.append(info.filename)
            entries.append((info.filename, info.file_size, crc))
    found = manifest_hash(entries)
    if found != expected:
        where = (
            f'; record {damaged[0]} ({_what(damaged[0])}) differs from what '
            'was written'
            + (f', and {len(damaged) - 1} more' if len(damaged) > 1 else '')
            if damaged
            else ''
        )
        raise CorruptCheckpointError(
            f'Checkpoint {name} is damaged: it was saved with content hash '
            f'{expected}, its contents now hash to {found}{where}. The file '
            'changed after it was written (a partial or failed copy, a file '
            'system error, bit rot). Use another copy, or an earlier checkpoint '
            '(--resume without a path takes the newest one that is complete).'
        )
    return expected


def _check_name(source, name: str, path: str) -> None:
    match = NAME_HASH.search(osp.basename(path))
    if match is None:
        return
    prefix = match.group(1)
    digest = hashlib.sha256()
    for at in range(0, len(source), _CHUNK):
        digest.update(source[at : at + _CHUNK])
    found = digest.hexdigest()
    if not found.startswith(prefix):
        raise CorruptCheckpointError(
            f'Checkpoint {name}: its name says its sha256 starts with {prefix}, '
            f'but the file hashes to {found} (sha256). The file is damaged or '
            'incomplete (download it again), or it was renamed to a name that '
            'is not its hash (rename it without the -<hex> ending).'
        )


def verify_checkpoint(
    source: Union[str, bytes, memoryview], name: Optional[str] = None
) -> Optional[str]:
    """Check a checkpoint file (a path) or its bytes before it is loaded.

    * A name ending in ``-<hex>.pth`` must be the start of the file's sha256.
    * A torch zip checkpoint with a content hash (every one ctal_mm writes) must match
      it; a truncated zip checkpoint is refused.
    * Anything else (a checkpoint written by other code, torch's legacy format) is
      passed on with a one-line note that it was not verified.

    Args:
        source: the file's path, or its bytes (a download held in memory).
        name: what to call it in messages (what the user wrote); default ``source``.

    Returns:
        The content hash the file was verified against, or None.

    Raises:
        CorruptCheckpointError: naming the file, the expected and the found hash.
    """
    if isinstance(source, str):
        path = source
        name = name or path
        with open(path, 'rb') as f:
            if os.fstat(f.fileno()).st_size == 0:
                raise CorruptCheckpointError(f'Checkpoint {name} is empty.')
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
                return _verify(buffer, name, path)
    return _verify(source, name or 'the checkpoint', name or '')


def _verify(buffer, name: str, path: str) -> Optional[str]:
    if path:
        _check_name(buffer, name, path)
    if bytes(buffer[:4]) != ZIP_MAGIC:
        print_log(
            f'{name} has no content hash (torch legacy format): loaded '
            'unverified.',
            logger='current',
        )
        return None
    digest = _verify_buffer(buffer, name)
    if digest is None:
        print_log(
            f'{name} has no content hash (not written by ctal_mm): loaded '
            'unverified.',
            logger='current',
        )
    return digest
