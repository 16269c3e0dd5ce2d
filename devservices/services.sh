#!/usr/bin/env bash
# Local services for development and tests, without Docker:
#   * Apache Kafka (KRaft, one combined controller+broker) from Maven Central jars;
#   * mongo-java-server (MongoDB wire protocol) from Maven Central jars, run by our launcher
#     devservices/mongo/MongoServerMain.java. Its data is kept on disk (H2 MVStore backend) in
#     $RUN_DIR/mongo/data.mv across stop/start; `reset` deletes it. MONGO_STORAGE=memory selects
#     the in-memory backend instead (every start is an empty server).
#
# Usage: devservices/services.sh start|stop|status|restart|reset [--keep-data] [kafka|mongo ...]
# --keep-data (or KAFKA_KEEP_DATA=1): `stop` leaves Kafka's data dir in place and `start` reuses
# it (same cluster, topics, records and committed offsets) instead of formatting a new cluster.
# See devservices/README.md for ports, environment overrides and caches.
set -euo pipefail
shopt -s inherit_errexit # a failure inside $(...) stops the script too

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
RUN_DIR=${DEVSERVICES_RUN_DIR:-$ROOT/.devservices}
CACHE_DIR=${DEVSERVICES_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/video-service}
PYTHON=${DEVSERVICES_PYTHON:-$ROOT/.venv/bin/python}

HOST=127.0.0.1
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_SASL_PORT=${KAFKA_SASL_PORT:-9094}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
MONGO_PORT=${MONGO_PORT:-27017}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}
MONGO_HEAP_OPTS=${MONGO_HEAP_OPTS:--Xms128m -Xmx1g}
MONGO_LOG_LEVEL=${MONGO_LOG_LEVEL:-warn}
MONGO_STORAGE=${MONGO_STORAGE:-disk} # disk (H2 MVStore file MONGO_DATA_FILE) or memory
MONGO_DATA_FILE=$RUN_DIR/mongo/data.mv
READY_TIMEOUT=${DEVSERVICES_READY_TIMEOUT:-120}
KAFKA_KEEP_DATA=${KAFKA_KEEP_DATA:-0} # 1 = as --keep-data: stop keeps, start reuses Kafka's data
export KAFKA_PORT KAFKA_SASL_PORT MONGO_PORT

# SASL users (dev only). PLAIN users live in the JAAS config; SCRAM credentials are written
# into the metadata log at format time. The same name/password works for all three mechanisms.
SASL_USERS=("alice:alice-secret" "admin:admin-secret")

ALL_SERVICES=(kafka mongo)

log() { printf 'devservices: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# prerequisites

need() { # need CMD "what to install"
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH. Install $2."
}

JAVA_SPEC= # set by check_java, e.g. 17

check_java() {
    [[ -n $JAVA_SPEC ]] && return 0
    need java "a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
    local v
    v=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')
    [[ ${v%%.*} =~ ^[0-9]+$ && ${v%%.*} -ge 17 ]] \
        || die "Kafka 4 and mongo-java-server need Java 17 or newer, found '${v:-unknown}' (Debian: apt-get install openjdk-17-jre-headless)."
    JAVA_SPEC=${v%%.*}
}

check_python() {
    [[ -x $PYTHON ]] || die "no Python at $PYTHON for the readiness probes. Run 'make install' first (or set DEVSERVICES_PYTHON)."
    "$PYTHON" -c 'import aiokafka, pymongo' 2>/dev/null \
        || die "$PYTHON lacks aiokafka/pymongo. Run 'make install' first."
}

hash_files() { cat "$@" | sha256sum | cut -c1-16; }

# ---------------------------------------------------------------------------------------------
# process helpers (one pid file per service; each service runs in its own process group)

pid_file() { echo "$RUN_DIR/$1.pid"; }

running_pid() { # prints the pid if the service started by this checkout is alive
    local f pid
    f=$(pid_file "$1")
    [[ -f $f ]] || return 1
    pid=$(<"$f")
    # A zombie (exited, e.g. killed, not yet reaped by init) counts as stopped.
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && still_running "$pid"; then
        echo "$pid"
        return 0
    fi
    rm -f "$f"
    return 1
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

require_free_ports() { # require_free_ports SERVICE VAR=PORT...
    local service=$1 spec
    shift
    for spec in "$@"; do
        if port_busy "${spec#*=}"; then
            die "$service: port ${spec#*=} on $HOST is already in use by a process this checkout did not start. Stop it, or pick another port with ${spec%%=*}=<port>."
        fi
    done
}

launch() { # launch NAME LOGFILE CMD... : start CMD in a new session (own process group)
    local name=$1 logfile=$2
    shift 2
    # fd 9 is the start/stop lock: the service must not inherit it.
    setsid "$@" </dev/null >"$logfile" 2>&1 9>&- &
    echo $! >"$(pid_file "$name")"
}

still_running() { # still_running PID|-PGID: true while a live (non-zombie) process of it is left
    # An exited service is a zombie until its parent (init, since services.sh has exited) reaps
    # it; `kill -0` still succeeds on zombies, and some inits reap only every second or two.
    local sel=$1
    if [[ $sel == -* ]]; then
        ps -eo pgid=,stat= | awk -v g="${sel#-}" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
    else
        ps -o stat= -p "$sel" | grep -qv '^Z'
    fi
}

stop_service() {
    local name=$1 pid pgid i
    if ! pid=$(running_pid "$name"); then
        log "$name: not running"
        rm -f "$(pid_file "$name")"
        return 0
    fi
    pgid=$(ps -o pgid= -p "$pid" | tr -d ' ' || true)
    local target=$pid
    [[ $pgid == "$pid" ]] && target=-$pid # the whole process group, if it leads one
    kill -TERM -- "$target" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do # up to 30 s for a clean shutdown
        still_running "$target" || break
        sleep 0.1
    done
    if still_running "$target"; then
        log "$name: still running after 30 s, sending SIGKILL"
        kill -KILL -- "$target" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            still_running "$target" || break
            sleep 0.1
        done
    fi
    rm -f "$(pid_file "$name")"
    log "$name: stopped (pid $pid)"
}

wait_ready() { # wait_ready NAME PID LOGFILE
    local name=$1 pid=$2 logfile=$3 t0=$SECONDS
    if ! "$PYTHON" "$HERE/probe.py" "$name" --pid "$pid" --timeout "$READY_TIMEOUT"; then
        log "$name: did not become ready; last lines of $logfile:"
        tail -n 40 "$logfile" >&2 || true
        stop_service "$name" || true
        exit 1
    fi
    log "$name: ready in $((SECONDS - t0)) s (pid $pid, log $logfile)"
}

# ---------------------------------------------------------------------------------------------
# jars from Maven Central (Kafka, mongo-java-server)

maven_classpath() { # maven_classpath NAME: resolves devservices/NAME/pom.xml once, prints the classpath file
    local name=$1 pom=$HERE/$1/pom.xml key cpfile tmp
    key=$(hash_files "$pom")
    cpfile=$CACHE_DIR/$name/classpath-$key.txt
    if [[ -s $cpfile ]]; then
        local jar missing=0
        while IFS= read -r -d: jar || [[ -n $jar ]]; do
            [[ -f $jar ]] || { missing=1; break; }
        done <"$cpfile"
        ((missing == 0)) && { echo "$cpfile"; return 0; }
        log "$name: cached classpath lists a missing jar; resolving again"
    fi
    need mvn "Apache Maven 3.8+ (Debian: apt-get install maven)"
    mkdir -p "$CACHE_DIR/$name"
    tmp=$(mktemp "$CACHE_DIR/$name/classpath.XXXXXX")
    local mvnlog=$RUN_DIR/logs/maven-$name.log
    log "$name: resolving jars with Maven into ~/.m2 (first run only; log: $mvnlog)"
    local t0=$SECONDS
    if ! mvn -B -f "$pom" dependency:build-classpath \
        -Dmdep.includeScope=runtime -Dmdep.outputFile="$tmp" >"$mvnlog" 2>&1; then
        rm -f "$tmp"
        tail -n 30 "$mvnlog" >&2
        die "$name: Maven could not resolve the jars of $pom (see $mvnlog)"
    fi
    mv "$tmp" "$cpfile"
    log "$name: jars resolved in $((SECONDS - t0)) s"
    echo "$cpfile"
}

# ---------------------------------------------------------------------------------------------
# Kafka

write_kafka_config() { # write_kafka_config DIR
    local dir=$1
    cat >"$dir/server.properties" <<EOF
# Generated by devservices/services.sh: single-node KRaft, tuned for tests, not production.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
$(kafka_listeners)
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT,SASL_PLAINTEXT://$HOST:$KAFKA_SASL_PORT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT

sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required $(plain_users);
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=500

log.segment.bytes=4194304
log.index.size.max.bytes=1048576
log.cleaner.dedupe.buffer.size=16777216
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
    cat >"$dir/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = STDOUT
logger.kserver.name = kafka.server
logger.kserver.level = INFO
EOF
}

plain_users() {
    local u out=""
    for u in "${SASL_USERS[@]}"; do out+="user_${u%%:*}=\"${u#*:}\" "; done
    echo "${out% }"
}

kafka_listeners() { # the listeners line of server.properties, for the current ports
    echo "listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT,SASL_PLAINTEXT://$HOST:$KAFKA_SASL_PORT"
}

start_kafka() {
    local pid dir=$RUN_DIR/kafka logfile=$RUN_DIR/logs/kafka.log
    if pid=$(running_pid kafka); then
        log "kafka: already running (pid $pid), checking it answers"
        wait_ready kafka "$pid" "$logfile"
        return 0
    fi
    require_free_ports kafka KAFKA_PORT="$KAFKA_PORT" KAFKA_SASL_PORT="$KAFKA_SASL_PORT" \
        KAFKA_CONTROLLER_PORT="$KAFKA_CONTROLLER_PORT"
    check_java
    local cpfile cp cluster_id u reuse=0
    cpfile=$(maven_classpath kafka)
    cp=$(<"$cpfile")
    if [[ $KAFKA_KEEP_DATA == 1 && -f $dir/data/meta.properties ]]; then
        # The controller's own address is part of the stored cluster metadata (the voter set
        # written by `format --standalone`): the kept data only works on the same ports.
        local kept
        kept=$(grep -s '^listeners=' "$dir/server.properties" || true)
        [[ $kept == "$(kafka_listeners)" ]] \
            || die "kafka: the data kept in $dir/data belongs to a broker with '${kept:-unknown listeners}', not '$(kafka_listeners)' (KAFKA_PORT, KAFKA_SASL_PORT, KAFKA_CONTROLLER_PORT). Start it on those ports, or without --keep-data for a new cluster."
        reuse=1
        write_kafka_config "$dir"
    else
        rm -rf "$dir"
        mkdir -p "$dir/data"
        write_kafka_config "$dir"
    fi
    local log4j=(-Dlog4j2.configurationFile="$dir/log4j2.properties" -Dkafka.logs.dir="$RUN_DIR/logs")
    if ((reuse == 0)); then
        cluster_id=$("$PYTHON" -c 'import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break')
        local scram=()
        for u in "${SASL_USERS[@]}"; do
            scram+=(--add-scram "SCRAM-SHA-256=[name=${u%%:*},password=${u#*:}]")
            scram+=(--add-scram "SCRAM-SHA-512=[name=${u%%:*},password=${u#*:}]")
        done
        if ! java -Xmx256m -XX:TieredStopAtLevel=1 "${log4j[@]}" -cp "$cp" kafka.tools.StorageTool format \
            --standalone -t "$cluster_id" -c "$dir/server.properties" "${scram[@]}" \
            >"$RUN_DIR/logs/kafka-format.log" 2>&1; then
            cat "$RUN_DIR/logs/kafka-format.log" >&2
            die "kafka: formatting the storage failed"
        fi
    fi
    # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS is a list of JVM flags
    launch kafka "$logfile" java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true "${log4j[@]}" \
        -cp "$cp" kafka.Kafka "$dir/server.properties"
    pid=$(running_pid kafka) || die "kafka: exited at once; see $logfile"
    local data="new cluster"
    ((reuse == 0)) || data="kept data of $dir/data"
    log "kafka: starting (pid $pid) on $HOST:$KAFKA_PORT (PLAINTEXT) and $HOST:$KAFKA_SASL_PORT (SASL_PLAINTEXT), $data"
    wait_ready kafka "$pid" "$logfile"
}

# ---------------------------------------------------------------------------------------------
# mongo-java-server (MongoDB wire protocol; H2 MVStore file or in memory)

mongo_classes() { # compiles the launcher (once per source, pom and Java version), prints the class dir
    local src=$HERE/mongo/MongoServerMain.java cp=$1 key dir tmp
    key=$(hash_files "$src" "$HERE/mongo/pom.xml")-java$JAVA_SPEC
    dir=$CACHE_DIR/mongo/classes-$key
    if [[ -f $dir/MongoServerMain.class ]]; then
        echo "$dir"
        return 0
    fi
    tmp=$dir.tmp.$$
    rm -rf "$tmp"
    mkdir -p "$tmp"
    log "mongo: compiling devservices/mongo/MongoServerMain.java into $dir (once)"
    # The compiler of the same runtime that runs the server (no separate javac/JDK version to
    # match). Debian's openjdk-17-jre-headless ships the jdk.compiler module.
    if ! java -m jdk.compiler/com.sun.tools.javac.Main -d "$tmp" -cp "$cp" "$src" \
        >"$RUN_DIR/logs/mongo-javac.log" 2>&1; then
        rm -rf "$tmp"
        cat "$RUN_DIR/logs/mongo-javac.log" >&2
        die "mongo: compiling $src failed. It needs the Java compiler (module jdk.compiler): install a JDK 17+ (Debian: apt-get install openjdk-17-jdk-headless)."
    fi
    find "$CACHE_DIR/mongo" -maxdepth 1 -name 'classes-*' ! -name "${dir##*/}*" -exec rm -rf {} +
    mv "$tmp" "$dir"
    echo "$dir"
}

mongo_storage_of() { # mongo_storage_of PID: "disk" if that server was given a data file, else "memory"
    local args
    args=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true)
    if [[ $args == *" MongoServerMain "*.mv" "* ]]; then echo disk; else echo memory; fi
}

start_mongo() {
    local pid logfile=$RUN_DIR/logs/mongo.log cpfile cp classes storage_args=() where
    [[ $MONGO_STORAGE == disk || $MONGO_STORAGE == memory ]] \
        || die "mongo: MONGO_STORAGE must be 'disk' or 'memory', not '$MONGO_STORAGE'"
    if pid=$(running_pid mongo); then
        log "mongo: already running (pid $pid), checking it answers"
        local running
        running=$(mongo_storage_of "$pid")
        [[ $running == "$MONGO_STORAGE" ]] \
            || log "mongo: note: the running server keeps its data $([[ $running == disk ]] && echo on disk || echo in memory); MONGO_STORAGE=$MONGO_STORAGE applies from the next start ('services.sh restart mongo')"
        wait_ready mongo "$pid" "$logfile"
        return 0
    fi
    case $MONGO_STORAGE in
    disk)
        mkdir -p "$RUN_DIR/mongo"
        storage_args=("$MONGO_DATA_FILE")
        where="data in $MONGO_DATA_FILE (kept across restarts; 'services.sh reset' deletes it)"
        ;;
    memory) where="in memory (every start is empty)" ;;
    esac
    require_free_ports mongo MONGO_PORT="$MONGO_PORT"
    check_java
    cpfile=$(maven_classpath mongo)
    cp=$(<"$cpfile")
    classes=$(mongo_classes "$cp")
    # shellcheck disable=SC2086  # MONGO_HEAP_OPTS is a list of JVM flags
    launch mongo "$logfile" java $MONGO_HEAP_OPTS -Djava.awt.headless=true \
        -Dorg.slf4j.simpleLogger.defaultLogLevel="$MONGO_LOG_LEVEL" \
        -Dorg.slf4j.simpleLogger.showDateTime=true \
        "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss.SSS" \
        -cp "$classes:$cp" MongoServerMain "$HOST" "$MONGO_PORT" "${storage_args[@]}"
    pid=$(running_pid mongo) || die "mongo: exited at once; see $logfile"
    log "mongo: starting mongo-java-server (pid $pid) on $HOST:$MONGO_PORT, $where"
    wait_ready mongo "$pid" "$logfile"
}

# ---------------------------------------------------------------------------------------------

status_service() {
    local pid
    case $1 in
    kafka) local where="$HOST:$KAFKA_PORT (PLAINTEXT), $HOST:$KAFKA_SASL_PORT (SASL_PLAINTEXT)" ;;
    mongo) local where="mongodb://$HOST:$MONGO_PORT" ;;
    esac
    if pid=$(running_pid "$1"); then
        if [[ $1 == mongo && $(mongo_storage_of "$pid") == disk ]]; then
            where+=", data in $MONGO_DATA_FILE"
        elif [[ $1 == mongo ]]; then
            where+=", in memory"
        fi
        echo "$1: running (pid $pid) on $where"
    else
        echo "$1: stopped"
        return 1
    fi
}

lock() {
    mkdir -p "$RUN_DIR/logs"
    exec 9>"$RUN_DIR/lock"
    if command -v flock >/dev/null 2>&1; then
        flock -w 600 9 || die "another services.sh has held $RUN_DIR/lock for 10 minutes"
    fi
}

main() {
    local cmd=${1:-}
    shift || true
    local services=() arg named=0
    for arg in "$@"; do
        if [[ $arg == --keep-data ]]; then KAFKA_KEEP_DATA=1; else services+=("$arg"); fi
    done
    ((${#services[@]})) && named=1 || services=("${ALL_SERVICES[@]}")
    local s
    for s in "${services[@]}"; do
        [[ $s == kafka || $s == mongo ]] || die "unknown service '$s' (kafka, mongo)"
    done
    case $cmd in
    start)
        lock
        check_python
        for s in "${services[@]}"; do "start_$s"; done
        ;;
    stop)
        lock
        for s in "${services[@]}"; do
            stop_service "$s"
            # Kafka's data goes unless kept (--keep-data, for a `start --keep-data` to reuse);
            # mongo's data file stays (see reset).
            if [[ $s == kafka && $KAFKA_KEEP_DATA != 1 ]]; then rm -rf "${RUN_DIR:?}/kafka/data"; fi
        done
        ;;
    reset) # stop mongo and delete its data; `reset kafka` stops Kafka and deletes any kept data
        ((named)) || services=(mongo)
        lock
        for s in "${services[@]}"; do
            stop_service "$s"
            if [[ $s == mongo ]]; then
                rm -rf "${RUN_DIR:?}/mongo"
                log "mongo: data deleted ($MONGO_DATA_FILE); the next start is empty"
            else
                rm -rf "${RUN_DIR:?}/kafka/data"
                log "kafka: data deleted; the next start formats a new cluster"
            fi
        done
        ;;
    restart) # with --keep-data, Kafka comes back with its topics, records and offsets
        local keep=()
        if [[ $KAFKA_KEEP_DATA == 1 ]]; then keep=(--keep-data); fi
        "$0" stop "${keep[@]}" "${services[@]}"
        "$0" start "${keep[@]}" "${services[@]}"
        ;;
    status)
        local rc=0
        for s in "${services[@]}"; do status_service "$s" || rc=3; done
        return $rc
        ;;
    *)
        echo "usage: $0 start|stop|status|restart|reset [--keep-data] [kafka|mongo ...]" >&2
        exit 2
        ;;
    esac
}

main "$@"
