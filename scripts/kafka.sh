#!/usr/bin/env bash
# One Apache Kafka broker (KRaft, broker+controller in one JVM) on loopback, from Maven Central jars.
#
#   scripts/kafka.sh install             fetch the jars into .kafka/libs (idempotent, fast when present)
#   scripts/kafka.sh start [DIR]         format DIR (once) and start a broker; prints BOOTSTRAP=host:port
#   scripts/kafka.sh stop [DIR]          stop the broker started in DIR (SIGTERM, then SIGKILL)
#   scripts/kafka.sh status [DIR]        exit 0 when the broker in DIR is running
#
# DIR defaults to .kafka/run. Settings through the environment: KAFKA_PORT (default 9092; 0 = a
# free port), KAFKA_CONTROLLER_PORT (default: free), KAFKA_HOST (default 127.0.0.1),
# KAFKA_HEAP (default 512m). Restarting with the same DIR keeps the data and the ports, which is
# how the tests restart a broker mid-stream. The tests use this very script (tests/kafka/conftest.py).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_HOME="${KAFKA_HOME:-$ROOT/.kafka}"
LIBS="$KAFKA_HOME/libs"
POM="$ROOT/deploy/kafka/pom.xml"
STAMP="$LIBS/.pom.sha256"

die() { echo "kafka.sh: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

install() {
    command -v java >/dev/null || die "java not found: apt-get install openjdk-17-jre-headless (or run scripts/bootstrap.sh)"
    local want
    want="$(sha256sum "$POM" | cut -d' ' -f1)"
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1; then
        return 0
    fi
    command -v mvn >/dev/null || die "mvn not found: apt-get install maven (or run scripts/bootstrap.sh)"
    echo "kafka.sh: fetching the Kafka broker jars from Maven Central into $LIBS"
    rm -rf "$LIBS"
    mkdir -p "$LIBS"
    mvn -q -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS" \
        || die "mvn could not fetch the jars (is Maven Central reachable?)"
    echo "$want" > "$STAMP"
}

java_cmd() {  # java_cmd DIR MAINCLASS ARGS...
    local dir="$1"; shift
    # shellcheck disable=SC2086
    exec java -Xms"${KAFKA_HEAP:-512m}" -Xmx"${KAFKA_HEAP:-512m}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -Djava.awt.headless=true -Dkafka.logs.dir="$dir" \
        -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties" \
        -cp "$LIBS/*" "$@"
}

running() {  # running DIR
    [ -f "$1/broker.pid" ] && kill -0 "$(cat "$1/broker.pid")" 2>/dev/null
}

start() {
    local dir="${1:-$KAFKA_HOME/run}"
    install
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if running "$dir"; then
        echo "BOOTSTRAP=$(cat "$dir/bootstrap")"
        return 0
    fi
    local host="${KAFKA_HOST:-127.0.0.1}" port cport
    if [ -f "$dir/server.properties" ]; then  # a restart: same ports, same data
        port="$(sed -n 's/^advertised.listeners=PLAINTEXT:\/\/.*:\([0-9]*\)$/\1/p' "$dir/server.properties")"
        cport="$(sed -n 's/^controller.quorum.voters=1@.*:\([0-9]*\)$/\1/p' "$dir/server.properties")"
    else
        port="${KAFKA_PORT:-9092}"; [ "$port" = 0 ] && port="$(free_port)"
        cport="${KAFKA_CONTROLLER_PORT:-$(free_port)}"
        sed -e "s#@HOST@#$host#g" -e "s#@PORT@#$port#g" -e "s#@CONTROLLER_PORT@#$cport#g" \
            -e "s#@DATA_DIR@#$dir/data#g" "$ROOT/deploy/kafka/server.properties" > "$dir/server.properties"
    fi
    if [ ! -f "$dir/data/meta.properties" ]; then
        (java_cmd "$dir" kafka.tools.StorageTool format --ignore-formatted \
            -t "$(java_cmd "$dir" kafka.tools.StorageTool random-uuid)" -c "$dir/server.properties") \
            > "$dir/format.log" 2>&1 || die "formatting storage failed: $(tail -5 "$dir/format.log")"
    fi
    (java_cmd "$dir" kafka.Kafka "$dir/server.properties") > "$dir/stdout.log" 2>&1 &
    echo $! > "$dir/broker.pid"
    echo "$host:$port" > "$dir/bootstrap"
    local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-60}))
    until grep -q "Kafka Server started" "$dir/broker.log" 2>/dev/null; do
        if ! running "$dir"; then
            die "the broker exited at start; last lines of $dir/broker.log and stdout.log:
$(tail -20 "$dir/broker.log" 2>/dev/null) $(tail -20 "$dir/stdout.log")"
        fi
        [ $SECONDS -lt $deadline ] || { stop "$dir"; die "the broker did not start within ${KAFKA_START_TIMEOUT:-60}s (see $dir/broker.log)"; }
        sleep 0.2
    done
    echo "BOOTSTRAP=$host:$port"
}

stop() {
    local dir="${1:-$KAFKA_HOME/run}"
    [ -f "$dir/broker.pid" ] || return 0
    local pid
    pid="$(cat "$dir/broker.pid")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$dir/broker.pid"
    # the next start waits for a fresh "started" line
    [ -f "$dir/broker.log" ] && mv "$dir/broker.log" "$dir/broker.log.prev"
    return 0
}

case "${1:-}" in
    install) install ;;
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    status) shift; running "${1:-$KAFKA_HOME/run}" ;;
    *) die "usage: scripts/kafka.sh install | start [DIR] | stop [DIR] | status [DIR]" ;;
esac
