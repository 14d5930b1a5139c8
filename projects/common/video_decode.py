"""Streams resized, optionally fps-resampled RGB frames out of video files with PyAV."""

import math
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction

import av
import numpy as np

# Reasons a video cannot be decoded (`VideoDecodeError.reason`), used as report categories.
MISSING_FILE = 'missing file'
EMPTY_FILE = 'empty file'
UNREADABLE = 'unreadable'
NO_VIDEO_STREAM = 'no video stream'
CORRUPT = 'corrupt'
TRUNCATED = 'truncated'
ZERO_FRAMES = 'zero frames'

# A declared duration can run a little past the last video frame (rounding, a last frame's
# duration), so only a clear shortfall counts as a cut-off file.
_TRUNCATION_TOLERANCE_SEC = 0.5
_TRUNCATION_TOLERANCE_FRACTION = 0.05

_DEFAULT_CODECS = {
  '.mp4': 'libx264',
  '.mkv': 'libx264',
  '.mov': 'libx264',
  '.avi': 'mpeg4',
  '.webm': 'libvpx-vp9',
}


class VideoDecodeError(Exception):
  """A video that cannot be decoded; `reason` is one of this module's reason constants."""

  def __init__(self, path: str, reason: str, detail: str = ''):
    self.path = path
    self.reason = reason
    self.detail = detail
    super().__init__(f'{path}: {reason}' + (f' ({detail})' if detail else ''))


def resized_shape(height: int, width: int, short_side: int | None) -> tuple[int, int]:
  """`(height, width)` scaled so the shorter side is `short_side` pixels; None keeps the size."""
  if short_side is None:
    return height, width
  scale = short_side / min(height, width)
  return max(1, round(height * scale)), max(1, round(width * scale))


def iter_frames(
  path: str,
  short_side: int | None = None,
  fps: float | Fraction | None = None,
  start_sec: float | None = None,
  end_sec: float | None = None,
) -> Iterator[tuple[np.ndarray, int]]:
  """Yields `(frame, repeats)` for a video: uint8 RGB `[height, width, 3]` frames in time order.

  Each frame is resized as soon as it is decoded (short side `short_side` pixels, aspect ratio
  kept), so memory holds one frame at a time whatever the video's length. Only frames shown in
  `[start_sec, end_sec)` are kept. With `fps`, output steps are spaced `1 / fps` seconds from
  `start_sec` (or the first frame) and each step takes the frame on screen at that time, so frames
  are dropped or repeated; `repeats` is how many consecutive steps a frame fills (1 without
  `fps`), letting callers encode a repeated frame once.

  Raises:
    VideoDecodeError: the file is missing, empty, unreadable, has no video stream, fails to
      decode, ends well before its declared duration, or has no frame in the requested window.
  """
  if short_side is not None and short_side < 1:
    raise ValueError(f'short_side must be a positive number of pixels, got {short_side}')
  if fps is not None and fps <= 0:
    raise ValueError(f'fps must be positive, got {fps}')
  if not os.path.exists(path):
    raise VideoDecodeError(path, MISSING_FILE)
  if os.path.getsize(path) == 0:
    raise VideoDecodeError(path, EMPTY_FILE, '0 bytes')
  try:
    container = av.open(path)
  except av.error.FFmpegError as e:
    raise VideoDecodeError(path, UNREADABLE, str(e)) from e
  with container:
    if not container.streams.video:
      kinds = ', '.join(s.type for s in container.streams) or 'none'
      raise VideoDecodeError(path, NO_VIDEO_STREAM, f'streams: {kinds}')
    stream = container.streams.video[0]
    stream.thread_type = 'AUTO'
    start = _exact(start_sec) if start_sec else None
    end = _exact(end_sec) if end_sec is not None else None
    if start is not None:
      try:
        container.seek(int(start / stream.time_base) + (stream.start_time or 0), stream=stream)
      except av.error.FFmpegError:
        # Some files cannot seek; decoding from the beginning and skipping gives the same frames.
        pass
    step = 1 / _exact(fps) if fps is not None else None
    timed = _timed_frames(container, stream, path)
    num_yielded = 0
    for frame, repeats in _schedule(timed, step, start, end):
      height, width = resized_shape(frame.height, frame.width, short_side)
      yield frame.to_ndarray(width=width, height=height, format='rgb24'), repeats
      num_yielded += 1
  if not num_yielded:
    window = '' if start is None and end is None else f' in [{start_sec}, {end_sec}) s'
    raise VideoDecodeError(path, ZERO_FRAMES, f'no frame{window}')


def _exact(value: float | Fraction) -> Fraction:
  """`value` as a fraction, e.g. 0.2 -> 1/5, so times compare exactly with frame timestamps."""
  # Floats such as 0.2 or 29.97 are not exact binary fractions; a bounded denominator undoes that.
  return Fraction(value).limit_denominator(1_000_000)


def _timed_frames(
  container: av.container.InputContainer, stream: av.VideoStream, path: str
) -> Iterator[tuple[Fraction, Fraction | None, av.VideoFrame]]:
  """Yields `(time_sec, duration_sec or None, frame)`; raises if the stream stops early."""
  time_base = stream.time_base
  origin = stream.start_time or 0
  rate = stream.average_rate or stream.guessed_rate
  nominal_duration = 1 / Fraction(rate) if rate else None
  num_decoded = 0
  time = duration = None
  try:
    for frame in container.decode(stream):
      if frame.pts is not None:
        time = (frame.pts - origin) * time_base
      elif time is None:
        time = Fraction(0)
      else:
        time += duration or nominal_duration or 0
      duration = frame.duration * time_base if frame.duration else nominal_duration
      num_decoded += 1
      yield time, duration, frame
  except av.error.FFmpegError as e:
    reason = TRUNCATED if num_decoded else CORRUPT
    raise VideoDecodeError(path, reason, f'decode error after {num_decoded} frames: {e}') from e
  declared = _declared_duration(container, stream, nominal_duration)
  decoded_end = time + (duration or 0) if num_decoded else 0
  tolerance = max(_TRUNCATION_TOLERANCE_SEC, _TRUNCATION_TOLERANCE_FRACTION * declared)
  if declared - decoded_end > tolerance:
    raise VideoDecodeError(
      path,
      TRUNCATED,
      f'frames end at {float(decoded_end):.2f} s but the file declares {float(declared):.2f} s',
    )


def _declared_duration(
  container: av.container.InputContainer,
  stream: av.VideoStream,
  nominal_duration: Fraction | None,
) -> Fraction:
  """How long the file says its video stream is, in seconds (0 if it does not say).

  The video stream's own claims come first: MP4 records its duration, AVI only a frame count,
  Matroska a `DURATION` tag. The container's duration covers every stream (an audio track may
  outlast the picture), so it stands in only when the video is the file's one stream.
  """
  claims = [
    stream.duration * stream.time_base if stream.duration else 0,
    stream.frames * nominal_duration if stream.frames and nominal_duration else 0,
    _tag_seconds(stream.metadata.get('DURATION')),
  ]
  # The longest claim is the one a cut-off file breaks.
  declared = max(claims)
  if not declared and container.duration and len(container.streams) == 1:
    declared = Fraction(container.duration, av.time_base)
  return declared


def _tag_seconds(tag: str | None) -> Fraction:
  """Seconds in a Matroska `HH:MM:SS.fraction` duration tag; 0 if absent or malformed."""
  try:
    hours, minutes, seconds = (tag or '').split(':')
    return (int(hours) * 60 + int(minutes)) * 60 + Fraction(seconds)
  except ValueError:
    return Fraction(0)


def _schedule(
  timed_frames: Iterator[tuple[Fraction, Fraction | None, object]],
  step: Fraction | None,
  start: Fraction | None,
  end: Fraction | None,
) -> Iterator[tuple[object, int]]:
  """Picks `(frame, repeats)` from time-stamped frames for the window and output rate."""
  if step is None:
    for time, _, frame in timed_frames:
      if end is not None and time >= end:
        return
      if start is None or time >= start:
        yield frame, 1
    return
  next_step = start
  pending = None
  pending_end = None
  for time, duration, frame in timed_frames:
    if next_step is None:
      next_step = time
    if pending is not None:
      # The pending frame stays on screen until this one; an early first frame also covers the
      # steps before it, so a window starting between keyframes still gets its first step.
      limit = time if end is None else min(time, end)
      repeats = _steps_before(next_step, limit, step)
      if repeats:
        yield pending, repeats
        next_step += repeats * step
    if end is not None and time >= end:
      return
    pending = frame
    pending_end = time + (duration or step)
  if pending is not None:
    limit = pending_end if end is None else min(pending_end, end)
    repeats = _steps_before(next_step, limit, step)
    if repeats:
      yield pending, repeats


def _steps_before(first: Fraction, limit: Fraction, step: Fraction) -> int:
  """How many of `first, first + step, ...` are below `limit`."""
  return max(0, math.ceil((limit - first) / step))


def write_video(
  path: str, frames: Iterable[np.ndarray], fps: int = 30, codec: str | None = None
) -> None:
  """Encodes uint8 RGB `[height, width, 3]` frames into a video file (for tests and benchmarks).

  The codec defaults by extension: H.264 for mp4/mkv/mov, MPEG-4 Part 2 for avi, VP9 for webm.
  """
  extension = os.path.splitext(path)[1].lower()
  if codec is None and extension not in _DEFAULT_CODECS:
    raise ValueError(f'no default codec for {path!r}; pass codec or use one of {_DEFAULT_CODECS}')
  with av.open(path, 'w') as container:
    stream = None
    for frame in frames:
      if stream is None:
        stream = container.add_stream(codec or _DEFAULT_CODECS[extension], rate=fps)
        stream.height, stream.width = frame.shape[:2]
        stream.pix_fmt = 'yuv420p'
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
        container.mux(packet)
    if stream is None:
      raise ValueError(f'no frames given for {path!r}')
    for packet in stream.encode():
      container.mux(packet)
