# syntax=docker/dockerfile:1
# astropipe: one image for every role (serve, worker, ingest/compact Jobs).
#
#   docker build -t astropipe:0.1.0 .
#   docker run --rm -p 8080:8080 -v "$PWD/astro-data:/data" astropipe:0.1.0 \
#       serve --catalog /data --addr 0.0.0.0:8080
#
# Runtime: distroless (glibc, CA certificates for S3/STS over TLS, no shell), non-root
# numeric UID 10001, works with a read-only root filesystem: it writes only to /tmp (mount an
# emptyDir there), e.g. `docker run --read-only --tmpfs /tmp ...`.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# BuildKit caches keep the registry and the build between image builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin astropipe \
    && install -D -m 0755 target/release/astropipe /out/astropipe

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/astropipe /usr/local/bin/astropipe
USER 10001:10001
ENV TMPDIR=/tmp \
    RUST_LOG=info
EXPOSE 8080 8081 50051
ENTRYPOINT ["/usr/local/bin/astropipe"]
CMD ["serve", "--addr", "0.0.0.0:8080"]
