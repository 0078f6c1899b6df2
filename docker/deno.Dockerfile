# One image for every Deno service of docker-compose.yml: producer, simulator, the processor
# stages, the topics/schema jobs and the status endpoint. Each service names its entrypoint.
#
# Build context: the repository root (see .dockerignore: .env and .local/ never enter the image).
# The Deno version matches DENO_VERSION in .ci/run; tests/compose_test.ts keeps the two in step.
FROM denoland/deno:2.9.6

ENV DENO_NO_UPDATE_CHECK=1
WORKDIR /app

# The image's `deno` user (uid 1993) owns DENO_DIR (/deno-dir), where the dependencies go. The
# source below stays owned by root, so the running services cannot change it.
USER deno

# Dependencies first: this layer is rebuilt only when deno.json or deno.lock change. --frozen fails
# the build when deno.lock does not match deno.json instead of resolving something new.
COPY deno.json deno.lock ./
RUN deno install --frozen

# Then the source. Caching every entrypoint's module graph fails the build on a missing file or on
# an import deno.lock does not pin; the services then run with --frozen --cached-only. The smoke
# test runs in the status container: docker compose exec status deno run --frozen --cached-only -A
# start/smoke.ts --simulator http://simulator:8765
COPY . .
RUN deno install --frozen --entrypoint \
    producer/main.ts \
    processor/main.ts \
    simulator/main.ts \
    admin/main.ts \
    status/main.ts \
    start/smoke.ts \
    docker/healthcheck.ts

# docker-compose.yml gives each service its own command; this default runs all three stages.
CMD ["deno", "run", "--frozen", "--cached-only", "-A", "processor/main.ts"]
