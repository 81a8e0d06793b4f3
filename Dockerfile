# Multi-stage build: a release binary on a slim Debian base, run as non-root.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY migration ./migration
COPY vendor ./vendor
COPY src ./src
COPY assets ./assets
COPY benches ./benches
RUN cargo build --release --locked --bin jobgraph

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /app jobgraph
COPY --from=build /src/target/release/jobgraph /usr/local/bin/jobgraph
USER jobgraph
WORKDIR /app
ENV BIND_ADDR=0.0.0.0:8000 LOG_FORMAT=json
EXPOSE 8000
ENTRYPOINT ["jobgraph"]
CMD ["serve"]
