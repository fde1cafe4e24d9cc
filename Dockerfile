# pod-hardener's image for those who build with Docker; `make image` builds
# the same shape without Docker (static binary, uid 65532, no shell).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/pod-hardener ./cmd/pod-hardener

# distroless static: no shell, no package manager; nonroot is uid 65532,
# the uid deploy/ runs it as.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pod-hardener /pod-hardener
USER 65532:65532
ENTRYPOINT ["/pod-hardener"]
