"""Every variant the detection step bench times is a valid change to its registered demo."""

import tensorflow as tf
from official.core import exp_factory

from bench import detection_demo_step as bench
from projects import registry_imports  # noqa: F401  (registers the experiments)


class VariantsTest(tf.test.TestCase):
  def test_each_variant_overrides_its_demo_strictly_and_changes_it(self):
    for demo, variants in bench.VARIANTS.items():
      registered = exp_factory.get_exp_config(demo)
      self.assertEqual(variants[0][1], {}, f'{demo}: the first variant is the demo itself')
      for label, override in variants[1:]:
        with self.subTest(demo=demo, variant=label):
          config = exp_factory.get_exp_config(demo)
          config.override(override, is_strict=True)
          config.validate()
          self.assertNotEqual(config.as_dict(), registered.as_dict())


if __name__ == '__main__':
  tf.test.main()
