"""Tests for projects.common.video_listing: CSV and folder listings and their errors."""

import os

import pytest

from projects.common import video_listing
from projects.common.video_listing import ListedVideo


def _csv(tmp_path, text: str) -> str:
  path = tmp_path / 'list.csv'
  path.write_text(text)
  return str(path)


def test_csv_with_header_windows_and_empty_cells(tmp_path):
  listing = _csv(
    tmp_path, 'path, label, start, end\na.mp4, run, , \nsub/b.mp4,jump,1.5,\nc.mp4,,,4\n'
  )
  videos = video_listing.list_videos(listing).videos
  assert videos == [
    ListedVideo(str(tmp_path / 'a.mp4'), 'a.mp4', 'run'),
    ListedVideo(str(tmp_path / 'sub/b.mp4'), 'sub/b.mp4', 'jump', 1.5, None),
    ListedVideo(str(tmp_path / 'c.mp4'), 'c.mp4', '', None, 4.0),
  ]
  assert [v.key for v in videos] == ['a.mp4', 'sub/b.mp4#t=1.5,', 'c.mp4#t=,4']


def test_csv_without_header_is_path_label(tmp_path):
  videos = video_listing.read_csv(_csv(tmp_path, 'a.mp4,run\nb.mp4\n\n'))
  assert [(v.video_id, v.label) for v in videos] == [('a.mp4', 'run'), ('b.mp4', '')]


def test_same_video_with_different_windows_has_different_keys(tmp_path):
  listing = _csv(tmp_path, 'path,label,start,end\nv.mp4,x,,\nv.mp4,x,0.5,\nv.mp4,x,0.2,0.5\n')
  keys = [v.key for v in video_listing.read_csv(listing, require_labels=True)]
  assert keys == ['v.mp4', 'v.mp4#t=0.5,', 'v.mp4#t=0.2,0.5']


@pytest.mark.parametrize(
  'text,message',
  [
    ('path,class\nv.mp4,a\n', 'header is path,class; expected path'),
    ('path,label,start\nv.mp4,a,soon\n', "list.csv:2: start 'soon' is not a number of seconds"),
    ('path,label,start\nv.mp4,a,-1\n', "start '-1' must be a finite, non-negative number"),
    ('path,label,start,end\nv.mp4,a,2,1\n', 'list.csv:2: end 1.0 s is not after start 2.0 s'),
    ('path,label\nv.mp4,a,extra\n', 'list.csv:2: 3 cells, expected at most path,label'),
    ('path,label\n,a\n', 'list.csv:2: row has no path'),
    ('path,label\nv.mp4,\n', 'list.csv:2: v.mp4 has no label; every video needs one'),
    ('path,label\nv.mp4,a\nw.mp4,a\nv.mp4,b\n', 'list.csv:4: v.mp4 is already listed on line 2'),
    ('path,label\n', 'list.csv: lists no videos'),
  ],
)
def test_bad_csv_is_rejected_naming_line_and_problem(tmp_path, text, message):
  with pytest.raises(video_listing.ListingError) as error:
    video_listing.list_videos(_csv(tmp_path, text), require_labels=True)
  assert message in str(error.value)


def _touch(path) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  open(path, 'wb').close()


def test_folder_labels_by_class_folder_sorted_with_ignored_files(tmp_path):
  root = tmp_path / 'videos'
  for name in ['dog/b.MP4', 'cat/z.webm', 'cat/deep/a.avi', 'top.mp4', 'cat/notes.txt']:
    _touch(root / name)
  listing = video_listing.list_videos(str(root), require_labels=True)
  assert [(v.video_id, v.label) for v in listing.videos] == [
    ('cat/deep/a.avi', 'cat'),
    ('cat/z.webm', 'cat'),
    ('dog/b.MP4', 'dog'),
  ]
  assert listing.videos[0].path == str(root / 'cat' / 'deep' / 'a.avi')
  assert listing.ignored == ['cat/notes.txt', 'top.mp4']

  optional = video_listing.list_videos(str(root))
  assert [(v.video_id, v.label) for v in optional.videos][-1] == ('top.mp4', '')
  assert optional.ignored == ['cat/notes.txt']

  unlabelled = video_listing.list_videos(str(root), folder_labels=False)
  assert {v.label for v in unlabelled.videos} == {''}
  assert [v.video_id for v in unlabelled.videos] == [v.video_id for v in optional.videos]


def test_folder_without_videos_and_missing_input_are_errors(tmp_path):
  _touch(tmp_path / 'videos' / 'loose.mp4')
  with pytest.raises(video_listing.ListingError, match='no class sub-folder holds a video file'):
    video_listing.list_videos(str(tmp_path / 'videos'), require_labels=True)
  with pytest.raises(video_listing.ListingError, match='neither a CSV file nor a folder'):
    video_listing.list_videos(str(tmp_path / 'nothing'))
