# aigve — CPU image. `docker run IMAGE` starts the server; `docker run IMAGE <command> ...` runs the CLI.
# Build:  docker build -t aigve:cpu .            (weights: --build-arg AIGVE_WEIGHTS="fid fvd")
# Run:    docker run -e AIGVE_API_TOKEN=... -p 127.0.0.1:2200:2200 -v aigve-state:/var/lib/aigve \
#                    -v "$PWD/data:/data:ro" aigve:cpu
FROM python:3.11.11-slim-bookworm

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# metric or weight names for `aigve weights fetch` (hash-checked; --strict refuses unpinned files)
ARG AIGVE_WEIGHTS="fid fvd"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

RUN groupadd --system --gid 10001 aigve \
    && useradd --system --uid 10001 --gid aigve --home-dir /var/lib/aigve --no-create-home \
       --shell /usr/sbin/nologin aigve

WORKDIR /opt/aigve
COPY pyproject.toml README.md ./
COPY src ./src

# torch is pinned here; the project's own dependencies are pinned/ranged in pyproject.toml (DL3013 does
# not see those, hence the ignore)
# hadolint ignore=DL3013
RUN pip install --index-url "${TORCH_INDEX}" torch==2.14.1 torchvision==0.29.1 \
    && pip install ".[offline,server]" \
    && rm -rf /root/.cache

# weights: downloaded and hash-checked now, read-only at run time (AIGVE_OFFLINE=1 forbids downloads)
RUN AIGVE_CACHE_DIR=/opt/aigve/build-cache aigve weights fetch ${AIGVE_WEIGHTS} --strict \
    && mkdir -p /opt/aigve/weights \
    && find /opt/aigve/build-cache/weights -maxdepth 1 -type f ! -name '*.json' -exec mv -t /opt/aigve/weights {} + \
    && rm -rf /opt/aigve/build-cache \
    && chmod -R a-w,a+rX /opt/aigve/weights

# state (job store, uploads, job folders, feature cache) lives in one volume owned by the service user;
# no directory in the image is world-writable (temporary files go to the volume too)
RUN mkdir -p /var/lib/aigve/tmp /data \
    && chown -R aigve:aigve /var/lib/aigve \
    && chmod 0750 /var/lib/aigve \
    && chmod 0755 /tmp /var/tmp \
    && if find / -xdev -type d -perm -0002 -print -quit | grep -q .; then \
         echo "world-writable directories left:" && find / -xdev -type d -perm -0002 -print && exit 1; fi

ENV HOME=/var/lib/aigve \
    TMPDIR=/var/lib/aigve/tmp \
    AIGVE_SERVER_DIR=/var/lib/aigve \
    AIGVE_CACHE_DIR=/var/lib/aigve/cache \
    AIGVE_WEIGHTS_DIR=/opt/aigve/weights \
    AIGVE_OFFLINE=1

USER 10001:10001
VOLUME ["/var/lib/aigve"]
EXPOSE 2200

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:2200/healthz', timeout=4)"]

ENTRYPOINT ["aigve"]
CMD ["serve", "--host", "0.0.0.0", "--port", "2200", "--data-root", "/data", "--device", "cpu"]
