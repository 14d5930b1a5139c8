"""pytest set-up shared by every test: CPU settings that must precede the TensorFlow import."""

import os

# Same CPU kernels as train.py (oneDNN); see the comment there.
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
