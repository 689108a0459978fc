# syntax=docker/dockerfile:1

# The embedded country database (CC0), fetched from the npm registry.
FROM node:20-alpine AS geo
WORKDIR /geo
COPY scripts/geo.sh scripts/geo.sh
RUN apk add --no-cache bash && mkdir -p internal/enrich/geo/data && bash scripts/geo.sh

FROM golang:1.27-alpine AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# data/country.mmdb and embedded_db.go, which embeds it
COPY --from=geo /geo/internal/enrich/geo/ internal/enrich/geo/
RUN go build -trimpath -ldflags='-s -w' -o /out/pocketlytics .

FROM alpine:3.20
# Go's collector runs a quarter as often while the heap is small (GOGC=400),
# under a soft limit; raise GOMEMLIMIT to at least twice the live heap
# (go_memstats_heap_inuse_bytes) on a busier instance. README: "Memory".
ENV GOGC=400 GOMEMLIMIT=100MiB
RUN apk add --no-cache ca-certificates tzdata wget \
	&& addgroup -S pocketlytics && adduser -S -G pocketlytics -h /app pocketlytics \
	&& mkdir -p /app/pb_data && chown pocketlytics:pocketlytics /app/pb_data
COPY --from=build /out/pocketlytics /app/pocketlytics
USER pocketlytics
WORKDIR /app
VOLUME /app/pb_data
EXPOSE 8090
# Run with a file-descriptor limit above the connections you expect
# (docker run --ulimit nofile=65536:65536; docker-compose.yml sets it).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s \
	CMD wget -qO- http://127.0.0.1:8090/api/health >/dev/null || exit 1
ENTRYPOINT ["/app/pocketlytics"]
CMD ["serve", "--http=0.0.0.0:8090", "--dir=/app/pb_data"]
