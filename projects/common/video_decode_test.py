"""Tests for PyAV frame decoding: codecs, resizing, fps resampling, clip windows, bad files."""

import os

import av
import numpy as np
import pytest

from projects.common import video_decode

_HEIGHT, _WIDTH = 48, 64


def _gray_frames(num_frames: int, height: int = _HEIGHT, width: int = _WIDTH) -> list[np.ndarray]:
  """Frame i is flat gray at level 8 * i (mod 256), so a decoded frame tells which one it is."""
  return [np.full((height, width, 3), 8 * i % 256, np.uint8) for i in range(num_frames)]


def _source_index(frame: np.ndarray) -> int:
  return round(float(frame.mean()) / 8)


def _write(tmp_path, name: str, num_frames: int = 30, codec: str | None = None, **kwargs) -> str:
  path = str(tmp_path / name)
  video_decode.write_video(path, _gray_frames(num_frames, **kwargs), fps=30, codec=codec)
  return path


def _decode(path: str, **kwargs) -> list[np.ndarray]:
  """All output steps, with repeated frames expanded."""
  return [f for f, repeats in video_decode.iter_frames(path, **kwargs) for _ in range(repeats)]


def _require_encoder(codec: str) -> None:
  try:
    av.codec.Codec(codec, 'w')
  except av.error.FFmpegError:
    pytest.skip(f'this PyAV build has no {codec} encoder')


@pytest.mark.parametrize(
  'name,codec', [('v.mp4', 'libx264'), ('v.avi', 'mpeg4'), ('v.webm', 'libvpx-vp9')]
)
def test_round_trip_keeps_frame_count_size_and_order(tmp_path, name, codec):
  _require_encoder(codec)
  path = _write(tmp_path, name, num_frames=12, codec=codec)
  frames = _decode(path)
  assert len(frames) == 12
  assert {f.shape for f in frames} == {(_HEIGHT, _WIDTH, 3)}
  assert {f.dtype for f in frames} == {np.dtype(np.uint8)}
  assert [_source_index(f) for f in frames] == list(range(12))


@pytest.mark.parametrize(
  'height,width,short_side,expected',
  [
    (48, 64, 24, (24, 32)),
    (64, 48, 24, (32, 24)),
    (48, 64, 32, (32, 43)),
    (48, 64, None, (48, 64)),
  ],
)
def test_resize_to_short_side(tmp_path, height, width, short_side, expected):
  path = _write(tmp_path, 'v.mp4', num_frames=3, height=height, width=width)
  frames = _decode(path, short_side=short_side)
  assert {f.shape[:2] for f in frames} == {expected}


@pytest.mark.parametrize(
  'fps,expected_sources',
  [
    (10, list(range(0, 30, 3))),
    (15, list(range(0, 30, 2))),
    (60, [i // 2 for i in range(60)]),
    (30, list(range(30))),
  ],
)
def test_fps_resampling_drops_or_repeats_by_timestamp(tmp_path, fps, expected_sources):
  path = _write(tmp_path, 'v.mp4', num_frames=30)
  frames = _decode(path, fps=fps)
  assert [_source_index(f) for f in frames] == expected_sources


def test_fps_resampling_reports_repeats_instead_of_copies(tmp_path):
  path = _write(tmp_path, 'v.mp4', num_frames=30)
  repeats = [r for _, r in video_decode.iter_frames(path, fps=90)]
  assert repeats == [3] * 30


def test_window_keeps_frames_in_start_end(tmp_path):
  path = _write(tmp_path, 'v.mkv', num_frames=30)
  frames = _decode(path, start_sec=0.2, end_sec=0.5)
  assert [_source_index(f) for f in frames] == list(range(6, 15))


def test_window_with_fps_starts_at_start(tmp_path):
  path = _write(tmp_path, 'v.mp4', num_frames=30)
  frames = _decode(path, fps=10, start_sec=0.5)
  assert [_source_index(f) for f in frames] == list(range(15, 30, 3))


def test_missing_file(tmp_path):
  with pytest.raises(video_decode.VideoDecodeError) as e:
    _decode(str(tmp_path / 'nope.mp4'))
  assert e.value.reason == video_decode.MISSING_FILE
  assert 'nope.mp4' in str(e.value)


def test_empty_file(tmp_path):
  path = tmp_path / 'empty.mp4'
  path.write_bytes(b'')
  with pytest.raises(video_decode.VideoDecodeError) as e:
    _decode(str(path))
  assert e.value.reason == video_decode.EMPTY_FILE


def test_random_bytes_are_unreadable(tmp_path):
  path = tmp_path / 'noise.mp4'
  path.write_bytes(np.random.default_rng(0).bytes(4096))
  with pytest.raises(video_decode.VideoDecodeError) as e:
    _decode(str(path))
  assert e.value.reason == video_decode.UNREADABLE


def test_audio_only_file_has_no_video_stream(tmp_path):
  path = str(tmp_path / 'audio.mka')
  with av.open(path, 'w') as container:
    stream = container.add_stream('pcm_s16le', rate=8000, layout='mono')
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format='s16', layout='mono')
    frame.sample_rate = 8000
    for packet in [*stream.encode(frame), *stream.encode()]:
      container.mux(packet)
  with pytest.raises(video_decode.VideoDecodeError) as e:
    _decode(path)
  assert e.value.reason == video_decode.NO_VIDEO_STREAM


@pytest.mark.parametrize('name', ['v.mkv', 'v.avi'])
def test_cut_off_file_is_truncated(tmp_path, name):
  # Noise frames are all about the same size, so cutting bytes cuts frames proportionally.
  rng = np.random.default_rng(0)
  path = str(tmp_path / name)
  video_decode.write_video(
    path, (rng.integers(0, 256, (_HEIGHT, _WIDTH, 3), np.uint8) for _ in range(60)), fps=30
  )
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) * 4 // 10)
  with pytest.raises(video_decode.VideoDecodeError) as e:
    _decode(path)
  assert e.value.reason == video_decode.TRUNCATED


def _write_with_longer_audio(path: str, num_frames: int, audio_sec: float) -> None:
  """30 fps gray frames plus a silent AAC track that runs `audio_sec` seconds."""
  with av.open(path, 'w') as container:
    video = container.add_stream('libx264', rate=30)
    video.height, video.width, video.pix_fmt = _HEIGHT, _WIDTH, 'yuv420p'
    audio = container.add_stream('aac', rate=16000, layout='mono')
    for frame in _gray_frames(num_frames):
      container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
    container.mux(video.encode())
    for first_sample in range(0, int(audio_sec * audio.rate), 1024):
      samples = av.AudioFrame.from_ndarray(
        np.zeros((1, 1024), np.float32), format='fltp', layout='mono'
      )
      samples.sample_rate, samples.pts = audio.rate, first_sample
      container.mux(audio.encode(samples))
    container.mux(audio.encode())


@pytest.mark.parametrize('name', ['v.mp4', 'v.mkv'])
def test_audio_longer_than_the_picture_is_not_truncation(tmp_path, name):
  # The container's duration (3 s) covers the audio; the video stream declares its own 1 s.
  path = str(tmp_path / name)
  _write_with_longer_audio(path, num_frames=30, audio_sec=3.0)
  with av.open(path) as container:
    assert container.duration / av.time_base > 2.9
  frames = _decode(path)
  assert [_source_index(f) for f in frames] == list(range(30))


def test_window_after_the_end_has_zero_frames(tmp_path):
  path = _write(tmp_path, 'v.mp4', num_frames=10)
  with pytest.raises(video_decode.VideoDecodeError) as e:
    _decode(path, start_sec=5.0, end_sec=6.0)
  assert e.value.reason == video_decode.ZERO_FRAMES
  assert '[5.0, 6.0)' in str(e.value)
