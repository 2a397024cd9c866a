# syntax=docker/dockerfile:1
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/roster ./cmd/roster && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/roster /usr/local/bin/roster
# The data folder belongs to the non-root user (uid 65532) the image runs as.
COPY --from=build --chown=65532:65532 /out/data /data
ENV ROSTER_LISTEN=0.0.0.0:8080 ROSTER_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/roster"]
CMD ["serve"]
