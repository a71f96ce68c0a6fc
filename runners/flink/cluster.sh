#!/usr/bin/env bash
# A local Flink session cluster at the runner's Flink version: one JobManager and N TaskManagers,
# each its own JVM, started from the jars runners/jars.sh resolves from Maven Central (flink-dist
# is not served there). Its REST API and web UI answer on http://localhost:$FLINK_REST_PORT.
#   runners/flink/cluster.sh start [N]   start it (N TaskManagers, default 2), wait until all registered
#   runners/flink/cluster.sh stop        stop every process it started
#   runners/flink/cluster.sh status      what the REST API reports
# Settings (environment): FLINK_REST_PORT (8081), FLINK_RPC_PORT (6123), FLINK_TM_SLOTS (1 slot per
# TaskManager: parallelism N then needs all N), FLINK_TM_TASK_HEAP (512m), FLINK_TM_NETWORK (256m),
# FLINK_CLUSTER_DIR (runners/flink/cluster/run: configuration, logs, pids, temporary files).
# The Python SDK workers the TaskManagers start (PROCESS environment, runners/flink/sdk_worker.sh)
# run $AGENTFLOW_PYTHON, else the Python this script finds first on PATH: start it with the project's
# virtualenv active.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
run="${FLINK_CLUSTER_DIR:-$here/cluster/run}"
rest_port="${FLINK_REST_PORT:-8081}"
rpc_port="${FLINK_RPC_PORT:-6123}"
slots="${FLINK_TM_SLOTS:-1}"
task_heap="${FLINK_TM_TASK_HEAP:-512m}"
network="${FLINK_TM_NETWORK:-256m}"
# As Flink's own scripts pass them: Flink serializes JDK classes reflectively (Kryo).
opens=()
for pkg in java.lang java.lang.reflect java.io java.net java.nio sun.nio.ch java.text java.time java.util \
    java.util.concurrent java.util.concurrent.atomic java.util.concurrent.locks; do
  opens+=("--add-opens=java.base/$pkg=ALL-UNNAMED")
done

mb() {  # "512m" / "1g" -> megabytes
  case "$1" in *g) echo $(( ${1%g} * 1024 ));; *m) echo "${1%m}";; *) echo "sizes are like 512m or 1g, not $1" >&2; exit 2;; esac
}

rest() {  # GET http://localhost:$rest_port$1, printed; fails when nothing answers
  "${AGENTFLOW_PYTHON:-python3}" -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "http://localhost:$rest_port$1" 2>/dev/null
}

write_conf() {
  mkdir -p "$run/conf" "$run/log" "$run/tmp"
  # Every TaskManager memory component is set: TaskManagerRunner started directly (not through
  # flink-dist's scripts, which derive them) requires them all.
  cat > "$run/conf/flink-conf.yaml" <<CONF
jobmanager.rpc.address: localhost
jobmanager.rpc.port: $rpc_port
jobmanager.bind-host: 127.0.0.1
jobmanager.memory.process.size: 1024m
rest.address: localhost
rest.bind-address: 127.0.0.1
rest.port: $rest_port
taskmanager.host: localhost
taskmanager.bind-host: 127.0.0.1
taskmanager.numberOfTaskSlots: $slots
taskmanager.cpu.cores: $slots
taskmanager.memory.framework.heap.size: 128m
taskmanager.memory.task.heap.size: $task_heap
taskmanager.memory.managed.size: 128m
taskmanager.memory.framework.off-heap.size: 128m
taskmanager.memory.task.off-heap.size: 256m
taskmanager.memory.network.min: $network
taskmanager.memory.network.max: $network
taskmanager.memory.jvm-metaspace.size: 256m
taskmanager.memory.jvm-overhead.min: 192m
taskmanager.memory.jvm-overhead.max: 192m
parallelism.default: 1
heartbeat.timeout: 120000
classloader.check-leaked-classloader: false
web.tmpdir: $run/tmp/web
web.upload.dir: $run/tmp/web
CONF
  cat > "$run/conf/log4j.properties" <<'CONF'
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = MainAppender
appender.main.name = MainAppender
appender.main.type = File
appender.main.fileName = ${sys:log.file}
appender.main.layout.type = PatternLayout
appender.main.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
logger.netty.name = org.apache.flink.shaded.netty4.io.netty.channel.DefaultChannelPipeline
logger.netty.level = OFF
CONF
}

start_java() {  # NAME MAIN-CLASS HEAP-MB DIRECT-MB ARGS...
  local name="$1" main="$2" heap="$3" direct="$4"
  shift 4
  nohup java -Xms"${heap}m" -Xmx"${heap}m" -XX:MaxDirectMemorySize="${direct}m" -XX:MaxMetaspaceSize=256m \
    "${opens[@]}" -Dlog.file="$run/log/$name.log" -Dlog4j.configurationFile="file:$run/conf/log4j.properties" \
    -Djava.io.tmpdir="$run/tmp/$name" -cp "$jar" "$main" --configDir "$run/conf" "$@" \
    > "$run/log/$name.out" 2>&1 &
  echo $! > "$run/$name.pid"
}

stop() {
  local pids=() f
  for f in "$run"/*.pid; do
    [ -e "$f" ] || continue
    pids+=("$(cat "$f")")
  done
  [ "${#pids[@]}" -gt 0 ] || { echo "no cluster started from $run"; return 0; }
  kill "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "${pids[@]}" 2>/dev/null || break
    sleep 0.5
  done
  kill -9 "${pids[@]}" 2>/dev/null || true
  rm -f "$run"/*.pid
  rm -rf "$run/tmp"
  echo "stopped ${#pids[@]} Flink processes"
}

case "${1:-}" in
  start)
    n="${2:-2}"
    if ls "$run"/*.pid >/dev/null 2>&1; then
      echo "a cluster from $run is running (runners/flink/cluster.sh stop first)" >&2; exit 1
    fi
    if rest /v1/config >/dev/null; then
      echo "port $rest_port already answers as a Flink REST API: stop that cluster or set FLINK_REST_PORT" >&2
      exit 1
    fi
    AGENTFLOW_PYTHON="${AGENTFLOW_PYTHON:-$(command -v python || true)}"
    "${AGENTFLOW_PYTHON:-false}" -c 'import agentflow, apache_beam' 2>/dev/null \
      || { echo "no python with agentflow on PATH: activate the project's virtualenv first" >&2; exit 2; }
    export AGENTFLOW_PYTHON
    jar="$("$here/../jars.sh" flink-cluster)"
    write_conf
    start_java jobmanager org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint 512 256
    heap=$(( 128 + $(mb "$task_heap") ))
    direct=$(( 128 + 256 + $(mb "$network") ))
    for i in $(seq 1 "$n"); do
      mkdir -p "$run/tmp/tm-$i"
      start_java "tm-$i" org.apache.flink.runtime.taskexecutor.TaskManagerRunner "$heap" "$direct" \
        -D "taskmanager.resource-id=tm-$i" -D "io.tmp.dirs=$run/tmp/tm-$i"
    done
    for _ in $(seq 1 240); do
      registered="$(rest /v1/overview 2>/dev/null | "$AGENTFLOW_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["taskmanagers"])' 2>/dev/null || true)"
      if [ "$registered" = "$n" ]; then
        echo "Flink session cluster: http://localhost:$rest_port ($n TaskManagers, $slots slot(s) each; logs in $run/log)"
        exit 0
      fi
      for f in "$run"/*.pid; do
        if ! kill -0 "$(cat "$f")" 2>/dev/null; then
          name="$(basename "$f" .pid)"
          echo "$name exited; the end of its log:" >&2
          tail -n 30 "$run/log/$name.log" "$run/log/$name.out" >&2 || true
          stop >&2
          exit 1
        fi
      done
      sleep 0.5
    done
    echo "the cluster did not register $n TaskManagers within 120 s (logs in $run/log)" >&2
    stop >&2
    exit 1
    ;;
  stop) stop ;;
  status) rest /v1/overview && echo || { echo "no Flink REST API on port $rest_port"; exit 1; } ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
