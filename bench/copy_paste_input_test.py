"""The cached input replays the same batches from memory, and the report gives every ratio and
says that input and step share the cores."""

import argparse

import tensorflow as tf

from bench import copy_paste_input


def _row(experiment, copy_paste, input_rate, step_rate, training_rate):
  return {
    'experiment': experiment,
    'copy_paste': copy_paste,
    'dtype': 'float32',
    'input_examples_per_second': input_rate,
    'step_examples_per_second': step_rate,
    'training_examples_per_second': training_rate,
    'peak_rss_mb': 3000.0,
  }


class InMemoryDatasetTest(tf.test.TestCase):
  def test_replays_the_first_batches_in_order(self):
    # Each element differs: a cache of the pipeline would repeat, a rerun would not.
    source = tf.data.Dataset.range(100).map(lambda i: {'image': tf.fill([2, 3], i)})
    cached = copy_paste_input.in_memory_dataset(source, 3)
    firsts = [int(batch['image'][0, 0]) for batch in cached.take(7)]
    self.assertEqual(firsts, [0, 1, 2, 0, 1, 2, 0])
    self.assertEqual(cached.element_spec['image'].shape, [2, 3])


class ReportTest(tf.test.TestCase):
  def test_ratios_against_the_step_and_between_with_and_without(self):
    args = argparse.Namespace(
      batch_size=8,
      input_batches=60,
      input_warmup_batches=5,
      timed_steps=20,
      warmup_steps=3,
      cached_batches=10,
    )
    demo = 'maskrcnn_copypaste_demo'
    text = copy_paste_input.report(
      [_row(demo, False, 100.0, 10.0, 9.0), _row(demo, True, 50.0, 10.0, 8.0)], args, 'a CPU'
    )
    self.assertIn('share these cores', text)
    self.assertIn('CPU: a CPU', text)
    self.assertIn('10.00x', text)  # Input alone / step, without Copy-Paste.
    self.assertIn('0.80x', text)  # Training / step, with it.
    self.assertIn('Copy-Paste input runs at 0.50x', text)


if __name__ == '__main__':
  tf.test.main()
