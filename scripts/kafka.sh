#!/bin/bash
# A real Apache Kafka broker for tests and benchmarks: one KRaft node
# (broker and controller in one JVM) from Maven Central's jars, run with
# the machine's JDK (17).
#
#   scripts/kafka.sh fetch                      jars into the cache, once
#   scripts/kafka.sh start DIR PORT CPORT       format DIR (first time), start,
#                                               wait until it answers
#   scripts/kafka.sh topic DIR NAME PARTITIONS  create a topic
#   scripts/kafka.sh stop DIR                   stop (SIGTERM, then SIGKILL)
#
# The jars go to $GOIM_KAFKA_CACHE (default ~/.cache/ngx_goim/kafka-VERSION),
# fetched by Maven from scripts/kafka/pom.xml; nothing is written into the
# repository.  DIR holds the broker's config, data, log and pid; starting
# again on the same DIR keeps the data (a broker restart).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' \
          "$HERE/kafka/pom.xml")
CACHE=${GOIM_KAFKA_CACHE:-$HOME/.cache/ngx_goim/kafka-$VERSION}
LIBS=$CACHE/libs

die() { echo "kafka.sh: $*" >&2; exit 1; }

fetch() {
    [ -f "$LIBS/.complete" ] && return 0
    command -v mvn >/dev/null || die "needs mvn (Debian: maven)"
    command -v java >/dev/null || die "needs java 17 (Debian: openjdk-17-jre-headless)"
    echo "kafka.sh: fetching Apache Kafka $VERSION into $CACHE" >&2
    rm -rf "$LIBS"
    mkdir -p "$LIBS"
    mvn -q -B -f "$HERE/kafka/pom.xml" \
        -Dmaven.repo.local="$CACHE/m2" \
        dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$LIBS" >"$CACHE/fetch.log" 2>&1 \
        || { tail -20 "$CACHE/fetch.log" >&2; die "maven failed"; }
    rm -rf "$CACHE/m2"
    touch "$LIBS/.complete"
}

JAVA_OPTS=(-Xms64m -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
           -Xshare:auto -Djava.awt.headless=true)

java_run() {
    local main=$1; shift
    java "${JAVA_OPTS[@]}" \
        -Dlog4j.configuration="file:$DIR/log4j.properties" \
        -cp "$LIBS/*" "$main" "$@"
}

start() {
    local port=$1 cport=$2 i
    fetch
    mkdir -p "$DIR"
    cat >"$DIR/log4j.properties" <<EOT
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.KafkaRaftServer=INFO
EOT
    cat >"$DIR/server.properties" <<EOT
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=1
EOT
    if [ ! -f "$DIR/data/meta.properties" ]; then
        local uuid
        uuid=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
        java_run kafka.tools.StorageTool format --cluster-id="$uuid" \
            -c "$DIR/server.properties" >"$DIR/format.log" 2>&1 \
            || { cat "$DIR/format.log" >&2; die "format failed"; }
    fi
    [ -f "$DIR/kafka.log" ] && mv "$DIR/kafka.log" "$DIR/kafka.log.1"
    setsid java "${JAVA_OPTS[@]}" \
        -Dlog4j.configuration="file:$DIR/log4j.properties" \
        -cp "$LIBS/*" kafka.Kafka "$DIR/server.properties" \
        >>"$DIR/kafka.log" 2>&1 </dev/null &
    echo $! >"$DIR/pid"
    for i in $(seq 1 600); do
        if grep -q 'Kafka Server started\|KafkaRaftServer.*started' \
            "$DIR/kafka.log" 2>/dev/null; then
            return 0
        fi
        kill -0 "$(cat "$DIR/pid")" 2>/dev/null \
            || { tail -30 "$DIR/kafka.log" >&2; die "the broker exited"; }
        sleep 0.1
    done
    tail -30 "$DIR/kafka.log" >&2
    die "the broker did not start within 60 s"
}

topic() {
    local name=$1 parts=$2 port
    port=$(sed -n 's/^advertised.listeners=PLAINTEXT:\/\/127.0.0.1://p' \
           "$DIR/server.properties")
    java_run org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "127.0.0.1:$port" --create --if-not-exists \
        --topic "$name" --partitions "$parts" --replication-factor 1 \
        >"$DIR/topic.log" 2>&1 \
        || { cat "$DIR/topic.log" >&2; die "cannot create topic $name"; }
}

stop() {
    local pid i
    [ -f "$DIR/pid" ] || return 0
    pid=$(cat "$DIR/pid")
    rm -f "$DIR/pid"
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

cmd=${1:-}
case "$cmd" in
fetch) fetch ;;
start) [ $# -eq 4 ] || die "usage: start DIR PORT CONTROLLER_PORT"
       DIR=$2; start "$3" "$4" ;;
topic) [ $# -eq 4 ] || die "usage: topic DIR NAME PARTITIONS"
       DIR=$2; topic "$3" "$4" ;;
stop)  [ $# -eq 2 ] || die "usage: stop DIR"
       DIR=$2; stop ;;
*)     die "usage: kafka.sh fetch | start DIR PORT CPORT | topic DIR NAME N | stop DIR" ;;
esac
