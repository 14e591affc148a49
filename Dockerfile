# One image for both roles: `ocrflow web` (the default command) or `ocrflow worker`.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OMP_THREAD_LIMIT=1

# The languages jobs may ask for: Tesseract language names, comma-separated
# (docker build --build-arg OCRFLOW_LANGUAGES=eng,deu,chi_sim .). A job that names none is
# read in OCRFLOW_OCR_LANGUAGES (default eng).
ARG OCRFLOW_LANGUAGES=eng

RUN packages=$(echo "$OCRFLOW_LANGUAGES" | tr ',+' '  ' | tr '[:upper:]_' '[:lower:]-' \
        | xargs -n1 | sed 's/^/tesseract-ocr-/' | sort -u) \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        tesseract-ocr tesseract-ocr-osd $packages poppler-utils \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/man/* /usr/share/locale/* \
    && find /usr/share/doc -depth -type f ! -name copyright -delete

WORKDIR /app
# The locked dependencies first (a layer kept while only ocrflow's own code changes), then ocrflow.
# (Every dependency installs from a wheel: nothing is compiled, so a build stage would save
# nothing. numpy's own test suite is the one large part the service never runs.)
COPY requirements/service.lock ./requirements/
RUN pip install -r requirements/service.lock \
    && find "$(python -c 'import numpy, os; print(os.path.dirname(numpy.__file__))')" \
        -depth -type d -name tests -exec rm -rf {} +
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY handlers ./handlers
COPY ocrflow ./ocrflow
RUN pip install --no-deps .

RUN useradd --create-home --uid 10001 ocrflow && mkdir /data && chown ocrflow /data
USER ocrflow

# In a container the ingress listens on every interface; PORT (as platforms set it) wins.
ENV OCRFLOW_HOST=0.0.0.0 \
    OCRFLOW_DATA_DIR=/data
EXPOSE 8080
VOLUME ["/data"]

# Meaningful for the web role; worker containers turn it off (see docker-compose.yml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', os.environ.get('OCRFLOW_PORT', '8080')), timeout=4)"

CMD ["ocrflow", "web"]
