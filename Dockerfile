# OpenLAM: the server (default) or a queue worker (`worker`), see docker/entrypoint.sh
# and docs/deploy.md.  Build: docker build -t openlam .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OPENLAM_WORKSPACE=/workspace \
    OPENLAM_PORT=8765

# Debian's Chromium (browser.* actions, driven by Playwright) and a Unicode font for PDFs:
# the same script a development machine uses.
COPY scripts/install-system-deps.sh /tmp/install-system-deps.sh
RUN bash /tmp/install-system-deps.sh \
    && rm -rf /var/lib/apt/lists/* /tmp/install-system-deps.sh

WORKDIR /build
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install . && rm -rf /build

COPY docker/entrypoint.sh /usr/local/bin/openlam-entrypoint
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin openlam \
    && mkdir -p /workspace && chown openlam:openlam /workspace
USER openlam
WORKDIR /workspace
VOLUME ["/workspace"]
EXPOSE 8765

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('OPENLAM_PORT', '8765') + '/api/v1/health', timeout=4)"

ENTRYPOINT ["openlam-entrypoint"]
CMD ["serve"]
