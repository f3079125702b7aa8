# syntax=docker/dockerfile:1
#
# baton-torq container image: a one-shot sync by default, writing /out/sync.c1z.
#
#   docker build -t baton-torq .
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/out" \
#     -e BATON_TORQ_CLIENT_ID -e BATON_TORQ_CLIENT_SECRET baton-torq
#
# The build needs no system protoc (build.rs uses protox) and no system SQLite (rusqlite is bundled); a C
# compiler (in the rust image) builds SQLite, zstd and ring.

ARG RUST_IMAGE=rust:1-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build -------------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
WORKDIR /src

# Dependency layer: the manifests, the build script and the .proto files with stub sources. This layer (all
# third-party crates compiled) is rebuilt only when Cargo.toml, Cargo.lock, build.rs or the protos change.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src/proto ./src/proto
# Stubs for every target declared in Cargo.toml (lib, bin, the sync benchmark if declared) so cargo can load
# the manifest; the real files replace them below.
RUN mkdir -p benches \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && echo 'fn main() {}' > benches/sync.rs \
 && cargo build --release --locked --bin baton-torq \
 && rm -f src/main.rs src/lib.rs target/release/baton-torq target/release/deps/baton_torq-* \
          target/release/deps/libbaton_torq-*

# The project itself. `touch` makes the real sources newer than the stub build, whatever mtimes COPY kept.
COPY . .
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin baton-torq \
 && ./target/release/baton-torq --version \
 && install -D -m 0755 target/release/baton-torq /dist/baton-torq

# ---- runtime -----------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
# CA certificates: the Torq client trusts the system certificate store (add a corporate proxy's CA here or
# mount it and run update-ca-certificates in a derived image).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 baton \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /out --shell /usr/sbin/nologin baton \
 && mkdir -p /out \
 && chown baton:baton /out

COPY --from=build /dist/baton-torq /usr/local/bin/baton-torq

LABEL org.opencontainers.image.title="baton-torq" \
      org.opencontainers.image.description="ConductorOne Baton connector for Torq: syncs users, roles and role memberships into a c1z file" \
      org.opencontainers.image.licenses="Apache-2.0"

USER 65532:65532
# The default --file is sync.c1z relative to the working directory, i.e. /out/sync.c1z; a .baton.yaml mounted
# into /out is read as the config file.
WORKDIR /out
VOLUME ["/out"]
ENTRYPOINT ["baton-torq"]
