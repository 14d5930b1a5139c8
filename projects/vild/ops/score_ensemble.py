"""ViLD-ensemble's geometric combination of the text and image branches' class scores."""

import tensorflow as tf

# Paper Sec. 3.4 and the official double-branch postprocessing: base classes weight the text
# branch by 2/3, novel classes weight the image branch by 2/3.
PAPER_ENSEMBLE_LAMBDA = 2.0 / 3.0


def ensemble_scores(
  text_scores: tf.Tensor,
  image_scores: tf.Tensor,
  base_class_mask: tf.Tensor,
  lambda_: float = PAPER_ENSEMBLE_LAMBDA,
) -> tf.Tensor:
  """Combines per-category probabilities of the two branches.

  base category:  text^lambda * image^(1 - lambda)
  novel category: text^(1 - lambda) * image^lambda

  Args:
    text_scores: [..., C] text-branch probabilities (softmax over background + categories, with
      the background column dropped).
    image_scores: [..., C] image-branch probabilities (softmax over the categories only).
    base_class_mask: [C] bool, True for the categories the detector was trained on.
    lambda_: weight in [0, 1] of the branch each kind of category trusts more.

  Returns:
    [..., C] ensemble scores.
  """
  if not 0.0 <= lambda_ <= 1.0:
    raise ValueError(f'ensemble lambda_ must lie in [0, 1], got {lambda_}')
  text_scores = tf.convert_to_tensor(text_scores)
  image_scores = tf.cast(image_scores, text_scores.dtype)
  text_exponent = tf.where(
    tf.cast(base_class_mask, tf.bool),
    tf.constant(lambda_, text_scores.dtype),
    tf.constant(1.0 - lambda_, text_scores.dtype),
  )
  return tf.pow(text_scores, text_exponent) * tf.pow(image_scores, 1.0 - text_exponent)
