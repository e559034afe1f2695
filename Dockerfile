# The mfh binary for the docker-compose stack. DuckDB's official shared library comes
# from its npm package, as in scripts/install-deps (no DuckDB compile).
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
RUN mkdir -p /opt/duckdb && cd /opt/duckdb && npm install --no-audit --no-fund @duckdb/node-bindings-linux-x64@1.5.6-r.1 \
 && cp node_modules/@duckdb/node-bindings-linux-x64/libduckdb.so /opt/duckdb/
COPY . .
ENV DUCKDB_LIB_DIR=/opt/duckdb LD_LIBRARY_PATH=/opt/duckdb
RUN cargo build --release -p mfh

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/duckdb/libduckdb.so /usr/local/lib/
COPY --from=build /src/target/release/mfh /usr/local/bin/mfh
COPY seed /app/seed
WORKDIR /app
ENV LD_LIBRARY_PATH=/usr/local/lib
ENTRYPOINT ["mfh"]
