"""The LVIS v1 category list (`lvis_v1_categories.json`, see this folder's README) by id and group.

LVIS groups its categories by how many training images show them (LVIS paper Sec. 3): rare (1-10
images), common (11-100) and frequent (>100). ViLD holds the rare ones out as novel (paper
Sec. 4.1) and reports AP_r on them.
"""

import dataclasses
import functools
import json
import os

LVIS_V1_CATEGORIES_PATH = os.path.join(os.path.dirname(__file__), 'lvis_v1_categories.json')
FREQUENCY_GROUPS = {'r': 'rare', 'c': 'common', 'f': 'frequent'}


@dataclasses.dataclass(frozen=True)
class LvisCategory:
  id: int
  name: str
  synonyms: tuple[str, ...]
  frequency: str  # 'r', 'c' or 'f'


@functools.cache
def lvis_v1_categories() -> tuple[LvisCategory, ...]:
  """The 1203 LVIS v1 categories in id order (ids 1..1203)."""
  with open(LVIS_V1_CATEGORIES_PATH) as f:
    records = json.load(f)['categories']
  categories = []
  for record in records:
    if record.get('frequency') not in FREQUENCY_GROUPS:
      raise ValueError(
        f'{LVIS_V1_CATEGORIES_PATH}: category {record.get("id")} has frequency '
        f'{record.get("frequency")!r}; expected one of {sorted(FREQUENCY_GROUPS)}'
      )
    categories.append(
      LvisCategory(record['id'], record['name'], tuple(record['synonyms']), record['frequency'])
    )
  return tuple(sorted(categories, key=lambda category: category.id))


def lvis_v1_category_names() -> list[str]:
  """Category names in id order: the rows of a text classifier for LVIS v1."""
  return [category.name for category in lvis_v1_categories()]


def lvis_v1_ids_by_frequency() -> dict[str, list[int]]:
  """{'r': [...], 'c': [...], 'f': [...]}: the category ids of each frequency group."""
  groups = {frequency: [] for frequency in FREQUENCY_GROUPS}
  for category in lvis_v1_categories():
    groups[category.frequency].append(category.id)
  return groups


def lvis_v1_base_class_mask(novel_frequencies: str = 'r') -> list[bool]:
  """One flag per category in id order, True for base: ViLD's split trains on common and
  frequent and holds out rare (`novel_frequencies='r'`)."""
  unknown = set(novel_frequencies) - set(FREQUENCY_GROUPS)
  if unknown:
    raise ValueError(
      f'novel_frequencies {novel_frequencies!r}: unknown groups {sorted(unknown)}; expected '
      f'letters of {"".join(FREQUENCY_GROUPS)}'
    )
  return [category.frequency not in novel_frequencies for category in lvis_v1_categories()]
