"""Lists the videos a tool is given: a CSV (`path,label[,start,end]`) or a folder of videos.

A CSV has an optional header (its first cell is `path`; columns from `path,label,start,end`, in
any order) and otherwise the columns `path,label`; paths are relative to the CSV's folder,
`start`/`end` are seconds and every column but `path` may be left empty. A folder is searched
recursively; a video's label is its top-level (class) sub-folder, none for a video at the top
(or none at all, when the caller says sub-folders are not classes).
"""

import csv
import dataclasses
import math
import os
from pathlib import Path

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.webm', '.mkv', '.mov')
CSV_COLUMNS = ('path', 'label', 'start', 'end')


class ListingError(ValueError):
  """The CSV or folder is unusable; the message names the file (and line) and what is wrong."""


@dataclasses.dataclass(frozen=True)
class ListedVideo:
  """One listed video, or a clip of it."""

  path: str  # Where to open the file.
  video_id: str  # The path as listed: relative to the CSV's folder or the listed folder, POSIX.
  label: str = ''  # '' when the listing gives none.
  start_sec: float | None = None
  end_sec: float | None = None

  @property
  def key(self) -> str:
    """Unique identity in a listing: `video_id`, with `#t=start,end` for a clip window."""
    if self.start_sec is None and self.end_sec is None:
      return self.video_id
    # The W3C Media Fragments time syntax, e.g. `a.mp4#t=2.5,10`; either bound may be empty.
    bounds = ['' if t is None else f'{t:g}' for t in (self.start_sec, self.end_sec)]
    return f'{self.video_id}#t={",".join(bounds)}'


@dataclasses.dataclass
class Listing:
  videos: list[ListedVideo]
  # Files in a listed folder that are not listed: not videos (by extension), or videos outside a
  # class sub-folder when labels are required. Relative POSIX paths.
  ignored: list[str] = dataclasses.field(default_factory=list)


def list_videos(
  input_path: str, *, require_labels: bool = False, folder_labels: bool = True
) -> Listing:
  """The videos a CSV lists or a folder holds; raises ListingError if there are none.

  With `require_labels`, every CSV row needs a label and a folder's videos outside a class
  sub-folder are ignored. `folder_labels=False` lists a folder's videos without labels.
  """
  if os.path.isdir(input_path):
    return list_folder(input_path, require_labels=require_labels, folder_labels=folder_labels)
  if os.path.isfile(input_path):
    return Listing(read_csv(input_path, require_labels=require_labels))
  raise ListingError(f'{input_path!r} is neither a CSV file nor a folder')


def read_csv(csv_path: str, *, require_labels: bool = False) -> list[ListedVideo]:
  """The videos a CSV lists, in its order (see the module docstring for the format)."""
  root = os.path.dirname(os.path.abspath(csv_path))
  with open(csv_path, newline='', encoding='utf-8') as f:
    rows = [(line, [cell.strip() for cell in row]) for line, row in enumerate(csv.reader(f), 1)]
  rows = [(line, row) for line, row in rows if any(row)]
  columns = ['path', 'label']
  if rows and rows[0][1][0] == 'path':
    columns = rows.pop(0)[1]
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if unknown or len(set(columns)) != len(columns):
      raise ListingError(
        f'{csv_path}: header is {",".join(columns)}; expected path with optional label,start,end'
      )
  videos, first_line = [], {}
  for line, row in rows:
    where = f'{csv_path}:{line}'
    if len(row) > len(columns):
      raise ListingError(f'{where}: {len(row)} cells, expected at most {",".join(columns)}')
    fields = dict(zip(columns, row, strict=False))
    path, label = fields.get('path', ''), fields.get('label', '')
    if not path:
      raise ListingError(f'{where}: row has no path')
    if require_labels and not label:
      raise ListingError(f'{where}: {path} has no label; every video needs one')
    start_sec = _seconds(fields.get('start'), where, 'start')
    end_sec = _seconds(fields.get('end'), where, 'end')
    if start_sec is not None and end_sec is not None and end_sec <= start_sec:
      raise ListingError(f'{where}: end {end_sec} s is not after start {start_sec} s')
    video = ListedVideo(os.path.join(root, path), path, label, start_sec, end_sec)
    if video.key in first_line:
      raise ListingError(f'{where}: {video.key} is already listed on line {first_line[video.key]}')
    first_line[video.key] = line
    videos.append(video)
  if not videos:
    raise ListingError(f'{csv_path}: lists no videos')
  return videos


def _seconds(value: str | None, where: str, column: str) -> float | None:
  if not value:
    return None
  try:
    seconds = float(value)
  except ValueError:
    raise ListingError(f'{where}: {column} {value!r} is not a number of seconds') from None
  if not math.isfinite(seconds) or seconds < 0:
    raise ListingError(f'{where}: {column} {value!r} must be a finite, non-negative number')
  return seconds


def list_folder(root: str, *, require_labels: bool = False, folder_labels: bool = True) -> Listing:
  """Video files under `root`, sorted by relative path, labelled by their class sub-folder."""
  if require_labels and not folder_labels:
    raise ValueError('require_labels needs folder_labels: a folder gives labels only by class')
  videos, ignored = [], []
  for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
    dirnames.sort()
    for filename in sorted(filenames):
      path = os.path.join(dirpath, filename)
      video_id = Path(os.path.relpath(path, root)).as_posix()
      label = video_id.split('/', 1)[0] if folder_labels and '/' in video_id else ''
      if filename.lower().endswith(VIDEO_EXTENSIONS) and (label or not require_labels):
        videos.append(ListedVideo(path, video_id, label))
      else:
        ignored.append(video_id)
  if not videos:
    where = 'no class sub-folder holds' if require_labels else 'no file found is'
    raise ListingError(f'{root}: {where} a video file ({", ".join(VIDEO_EXTENSIONS)})')
  # os.walk visits a folder's files before its sub-folders; the listing is sorted as a whole.
  videos.sort(key=lambda video: video.video_id)
  ignored.sort()
  return Listing(videos, ignored)
