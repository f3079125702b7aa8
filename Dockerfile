# syntax=docker/dockerfile:1
#
# baton-torq container image: a one-shot sync by default, writing /out/sync.c1z (mode 0600).
#
#   docker build -t baton-torq .
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/out" \
#     -e BATON_TORQ_CLIENT_ID -e BATON_TORQ_CLIENT_SECRET baton-torq
#   scripts/container-smoke.sh baton-torq          # the checks CI runs on the built image
#
# The build needs no system protoc (build.rs uses protox) and no system SQLite (rusqlite is bundled); a C
# compiler (in the rust image) builds SQLite, zstd and ring. Both base images are build args so a mirror or a
# local stand-in can replace them.

ARG RUST_IMAGE=rust:1-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build -------------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
WORKDIR /src

# The image's binary carries no debug info and no symbol table: Cargo.toml's release profile keeps line tables
# for local builds, which would more than double the image (README "In a container" has the sizes). Set before
# the dependency layer so both cargo builds use the same profile.
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=symbols

# Dependency layer: the manifests, the build script and the .proto files with stub sources. This layer (all
# third-party crates compiled) is rebuilt only when Cargo.toml, Cargo.lock, build.rs or the protos change.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src/proto ./src/proto
# One stub at the path of every target Cargo.toml declares (lib, bin, bench), so cargo can load the manifest;
# all of them are deleted again, so a target missing from the real sources fails the build instead of
# shipping a stub. tests/workflows.rs checks this list against `cargo metadata`.
RUN stubs="src/lib.rs src/main.rs benches/sync/main.rs benches/c1z_write.rs benches/service_soak.rs benches/review.rs" \
 && for f in $stubs; do mkdir -p "$(dirname "$f")" && echo '#![allow(dead_code)] fn main() {}' > "$f"; done \
 && cargo build --release --locked --bin baton-torq \
 && rm -f $stubs target/release/baton-torq target/release/deps/baton_torq-* target/release/deps/libbaton_torq-* \
 && rm -rf benches

# The project itself. `touch` makes the real sources newer than the stub build, whatever mtimes COPY kept.
# The check wants the real binary's version line: a stub left behind would print nothing.
COPY . .
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin baton-torq \
 && version="$(./target/release/baton-torq --version)" \
 && case "$version" in "baton-torq version v"*) echo "$version" ;; \
      *) echo "built binary is not baton-torq (a leftover stub?): '$version'" >&2; exit 1 ;; esac \
 && install -D -m 0755 target/release/baton-torq /dist/baton-torq

# ---- runtime -----------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
# CA certificates only: the Torq client trusts the system certificate store (add a corporate proxy's CA in a
# derived image and run update-ca-certificates). Downloaded packages, apt lists, backups and logs are not kept.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/log/apt /var/log/dpkg.log \
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
