# keygate's container image: a static binary on distroless, run as the
# unprivileged "nonroot" user (65532). Build with
#   docker build -t keygate .
# The build command is .ci/build-static, which CI runs too.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.1.0-dev
RUN .ci/build-static /out/keygate "$VERSION" \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/keygate /usr/local/bin/keygate
# The SQLite database lives here when no PostgreSQL URL is given; mount a
# volume on it. (Several instances need PostgreSQL: set KEYGATE_DB.)
COPY --from=build --chown=65532:65532 /out/data /var/lib/keygate
USER 65532:65532
ENV KEYGATE_ADDR=0.0.0.0:8080 \
    KEYGATE_DB=/var/lib/keygate/keygate.db
EXPOSE 8080
VOLUME /var/lib/keygate
ENTRYPOINT ["/usr/local/bin/keygate"]
CMD ["serve"]
