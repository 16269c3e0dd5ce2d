#!/usr/bin/env bash
# `make demo`: the service end to end on this machine, without vendor keys.
#
# Starts the local Kafka and MongoDB-wire server (devservices/services.sh; only those not
# already running), the vendor simulator and the service, then sends one request to each vendor
# with the CLI (`video-service`), shows their progress live, and prints where the videos are.
# Everything it started is stopped at the end, or on Ctrl-C. It uses topics and a database of
# its own (demo.video.*, video_demo), so it never disturbs a `make run` on the default ones.
#
# Environment: DEMO_PROMPT (the prompt), KEEP=1 (leave the simulator and the service running
# and print how to reach them; stop them with Ctrl-C).
# `demo.sh --requests-only` sends the requests and shows them, to a service already running
# (docker-compose.yml's demo profile runs it so).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PY=${DEMO_PYTHON:-$ROOT/.venv/bin/python}
CLI=${DEMO_CLI:-$ROOT/.venv/bin/video-service}
REQUESTS_ONLY=0
[[ ${1:-} == --requests-only ]] && REQUESTS_ONLY=1
SERVICES=$ROOT/devservices/services.sh
RUN=$ROOT/.devservices/demo
started_services=()
pids=()
t0=$SECONDS

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    say "stopping what the demo started"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if ((${#started_services[@]})); then "$SERVICES" stop "${started_services[@]}" >/dev/null 2>&1 || true; fi
    say "demo finished in $((SECONDS - t0)) s"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_http() { # wait_http URL WHAT LOGFILE
    for _ in $(seq 600); do
        if "$PY" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "$2 did not start; its log ($3):" >&2
    tail -20 "$3" >&2
    exit 1
}

start_everything() {
    mkdir -p "$RUN"
    say "local Kafka and MongoDB-wire server"
    local port
    for service in kafka mongo; do
        [[ $service == kafka ]] && port=${KAFKA_PORT:-9092} || port=${MONGO_PORT:-27017}
        if "$SERVICES" status "$service" >/dev/null 2>&1; then continue; fi
        # Something else already serves it (DEVSERVICES_EXTERNAL=1, docker compose, another
        # checkout): use it as it is.
        if [[ ${DEVSERVICES_EXTERNAL:-0} == 1 ]] || (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$service: using what listens on 127.0.0.1:$port"
            continue
        fi
        started_services+=("$service")
    done
    if ((${#started_services[@]})); then "$SERVICES" start "${started_services[@]}"; else echo "already running"; fi

    say "vendor simulator (DashScope and BigModel APIs, 2 s queued + 8 s running per video)"
    SIM_PORT=$(free_port)
    "$PY" -m simulator --port "$SIM_PORT" --config demo/simulator.json >"$RUN/simulator.log" 2>&1 &
    pids+=($!)
    wait_http "http://127.0.0.1:$SIM_PORT/_sim/health" simulator "$RUN/simulator.log"
    echo "http://127.0.0.1:$SIM_PORT"

    say "the service (faststream run consumers.app:app)"
    export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:${KAFKA_PORT:-9092}
    export TOPIC_REQUESTS=demo.video.requests TOPIC_CANCEL=demo.video.cancel \
        TOPIC_STATUS=demo.video.status TOPIC_COMPLETED=demo.video.completed \
        TOPIC_DLQ=demo.video.requests.dlq
    METRICS_PORT=$(free_port)
    VIDEO_DIR=$ROOT/data/demo-videos
    mkdir -p "$VIDEO_DIR"
    (
        export MONGODB_URL=mongodb://127.0.0.1:${MONGO_PORT:-27017} MONGODB_DB=video_demo \
            KAFKA_GROUP_ID=video-demo METRICS_PORT VIDEO_DIR \
            ALIYUN_API_KEY=sk-demo ZHIPUAI_API_KEY=demo.key \
            ALIYUN_BASE_URL=http://127.0.0.1:$SIM_PORT ZHIPUAI_BASE_URL=http://127.0.0.1:$SIM_PORT \
            DOWNLOAD_ALLOWED_HOSTS=127.0.0.1 \
            POLL_FIRST_S=1 POLL_INTERVAL_MIN_S=1 POLL_INTERVAL_MAX_S=2 \
            ALIYUN_SUBMITS_PER_S=0 ALIYUN_QUERIES_PER_S=0 ALIYUN_RUNNING_PER_MODEL=0 \
            ZHIPUAI_SUBMITS_PER_S=0 ZHIPUAI_QUERIES_PER_S=0 ZHIPUAI_RUNNING_PER_MODEL=0
        exec "$ROOT/.venv/bin/faststream" run consumers.app:app
    ) >"$RUN/service.log" 2>&1 &
    pids+=($!)
    wait_http "http://127.0.0.1:$METRICS_PORT/readyz" service "$RUN/service.log"
    echo "ready (log: $RUN/service.log, metrics: http://127.0.0.1:$METRICS_PORT/metrics)"
}

if ((REQUESTS_ONLY)); then
    trap - EXIT
else
    start_everything
fi

PROMPT=${DEMO_PROMPT:-a kitten playing on the grass at sunset}
say "one request to each vendor, with the CLI"
echo "\$ video-service submit wanx2.1-t2v-turbo -p prompt='$PROMPT' -p size=832*480"
ALIYUN_ID=$("$CLI" submit wanx2.1-t2v-turbo -p "prompt=$PROMPT" -p size=832*480 --json \
    | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["request_id"])')
echo "\$ video-service submit cogvideox-flash -p prompt='$PROMPT' -p quality=speed"
ZHIPU_ID=$("$CLI" submit cogvideox-flash -p "prompt=$PROMPT" -p quality=speed --json \
    | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["request_id"])')

say "their progress, live: video-service watch $ALIYUN_ID $ZHIPU_ID"
"$CLI" watch "$ALIYUN_ID" "$ZHIPU_ID"

say "the videos"
for id in "$ALIYUN_ID" "$ZHIPU_ID"; do
    "$CLI" status "$id" --json | "$PY" -c '
import json, sys
completed = json.load(sys.stdin)["completed"]
for video in completed["result"]["videos"] if completed else []:
    print(video["local_path"])'
done | xargs -r ls -l
if [[ ${KEEP:-0} == 1 ]]; then
    say "KEEP=1: still running; in another terminal, with the same topics:"
    echo "  export KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS TOPIC_REQUESTS=$TOPIC_REQUESTS TOPIC_CANCEL=$TOPIC_CANCEL TOPIC_STATUS=$TOPIC_STATUS TOPIC_COMPLETED=$TOPIC_COMPLETED TOPIC_DLQ=$TOPIC_DLQ"
    echo "  .venv/bin/video-service submit viduq1-text -p prompt='a red fox' --wait"
    echo "Ctrl-C stops everything."
    wait "${pids[@]}"
fi
