# The image of the profile-sync services: extender, notifier, snapshot differ.
#
#   docker build -t profile-sync:0.1.0 .
#
# The base is pinned by version; for reproducible builds pin it by digest as well:
#   --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>
# The REST gateway runs the official Envoy image (see charts/profile-sync), not this one.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/profile-sync
ENV PATH=/opt/profile-sync/bin:$PATH
WORKDIR /src

# Dependencies first, from pyproject.toml alone: the layer is reused until they change.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(p['project']['dependencies'] + [d for d in p['project']['optional-dependencies']['dev'] if d.startswith('grpcio-tools')]))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

# The generated protobuf code is built here, with the same protobuf the services run.
COPY protos ./protos
COPY scripts/gen_protos.py ./scripts/gen_protos.py
COPY services ./services
RUN python scripts/gen_protos.py \
 && pip install --no-deps . \
 && pip uninstall --yes grpcio-tools \
 # The root filesystem is read-only at run time: compile every module now.
 && python -m compileall -q /opt/profile-sync

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="profile-sync" \
      org.opencontainers.image.description="Keeps SharePoint Online user profiles in step with a line-of-business application"
# A fixed, unprivileged user; the chart runs every pod as this uid and gid.
RUN groupadd --system --gid 10001 profilesync \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin profilesync
COPY --from=build /opt/profile-sync /opt/profile-sync
ENV PATH=/opt/profile-sync/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    # Libraries that want a home or a cache directory get the writable /tmp (an emptyDir).
    HOME=/tmp
WORKDIR /app
USER 10001:10001
EXPOSE 50051 50052 50053 9464
# Every service is `python -m services.<name>`; the chart names the one each pod runs.
CMD ["python", "-m", "services.profile_extender"]
