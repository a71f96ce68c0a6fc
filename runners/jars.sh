#!/usr/bin/env bash
# Resolve the Java side of the runner profiles from Maven Central into runners/<name>/lib,
# and write runners/<name>/launcher.jar: a jar holding only a manifest (Main-Class and a
# Class-Path of lib/*.jar), so `java -jar launcher.jar` works where Beam expects a jar.
# A profile with Java sources of its own (runners/<name>/src/main/java) gets them compiled
# against lib/ into its launcher.jar (vespa: `java -jar launcher.jar APP_DIR` validates a
# Vespa application package with Vespa's config model; `java -cp launcher.jar
# dev.agentflow.vespa.CheckRequests` checks queries and feed bodies with Vespa's container code).
# flink-cluster (runners/flink/cluster) adds a Flink session cluster's web handlers and logging
# to the flink profile's jars and classes: its launcher.jar's Class-Path names both
# (runners/flink/cluster.sh).
#   runners/jars.sh flink|flink-cluster|expansion|kafka|vespa ...
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
declare -A MAIN=(
  [flink]=org.apache.beam.runners.flink.FlinkJobServerDriver
  [expansion]=org.apache.beam.sdk.expansion.service.ExpansionService
  [kafka]=kafka.Kafka
  [vespa]=dev.agentflow.vespa.ValidatePackage
  [flink-cluster]=org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint
)
# Profiles kept in another folder than runners/<name>, and profiles whose classpath starts with
# another profile's lib/ (resolved first).
declare -A DIR=([flink-cluster]=flink/cluster)
declare -A BASE=([flink-cluster]=flink)
# Packages Flink serializes reflectively (Kryo) in checkpoints: Java 17 needs them opened,
# which `java -jar` reads from the manifest's Add-Opens (Flink's own scripts pass the flags).
declare -A OPENS=(
  [flink]="java.base/java.lang java.base/java.lang.reflect java.base/java.io java.base/java.net java.base/java.nio java.base/sun.nio.ch java.base/java.text java.base/java.time java.base/java.util java.base/java.util.concurrent java.base/java.util.concurrent.atomic java.base/java.util.concurrent.locks"
)
for name in "$@"; do
  [ -n "${MAIN[$name]:-}" ] || { echo "unknown profile $name" >&2; exit 2; }
  dir="$here/${DIR[$name]:-$name}"
  base=""
  if [ -n "${BASE[$name]:-}" ]; then
    "$0" "${BASE[$name]}" >/dev/null
    base="$here/${BASE[$name]}"
  fi
  src="$dir/src/main/java"
  resolve=""
  if [ ! -f "$dir/launcher.jar" ] || [ "$dir/pom.xml" -nt "$dir/launcher.jar" ] || [ ! -d "$dir/lib" ]; then
    resolve=1
  fi
  if [ -n "$resolve" ] || [ "$0" -nt "$dir/launcher.jar" ] \
      || { [ -n "$base" ] && [ "$base/launcher.jar" -nt "$dir/launcher.jar" ]; } \
      || { [ -d "$src" ] && [ -n "$(find "$src" -newer "$dir/launcher.jar" -print -quit)" ]; }; then
    if [ -n "$resolve" ]; then
      rm -rf "$dir/lib"
      mvn -q -B -f "$dir/pom.xml" dependency:copy-dependencies -DoutputDirectory="$dir/lib" >&2
    fi
    tmp="$(mktemp -d)"
    mkdir "$tmp/classes"
    if [ -d "$src" ]; then
      find "$src" -name '*.java' > "$tmp/sources"
      javac -nowarn --release 17 -cp "$dir/lib/*" -d "$tmp/classes" "@$tmp/sources" >&2
    fi
    {
      echo "Manifest-Version: 1.0"
      echo "Main-Class: ${MAIN[$name]}"
      printf 'Class-Path:'
      for jar in "$dir"/lib/*.jar; do printf ' \n lib/%s' "$(basename "$jar")"; done
      if [ -n "$base" ]; then
        rel="$(realpath --relative-to="$dir" "$base/lib")"
        printf ' \n %s/launcher.jar' "$(dirname "$rel")"
        for jar in "$base"/lib/*.jar; do printf ' \n %s/%s' "$rel" "$(basename "$jar")"; done
      fi
      printf '\n'
      if [ -n "${OPENS[$name]:-}" ]; then
        printf 'Add-Opens:'
        for pkg in ${OPENS[$name]}; do printf ' \n %s' "$pkg"; done
        printf '\n'
      fi
    } > "$tmp/MANIFEST.MF"
    jar --create --file "$dir/launcher.jar" --manifest "$tmp/MANIFEST.MF" -C "$tmp/classes" .
    rm -rf "$tmp"
  fi
  echo "$dir/launcher.jar"
done
