#!/usr/bin/env bash
# Resolve the Java side of the runner profiles from Maven Central into runners/<name>/lib,
# and write runners/<name>/launcher.jar: a jar holding only a manifest (Main-Class and a
# Class-Path of lib/*.jar), so `java -jar launcher.jar` works where Beam expects a jar.
#   runners/jars.sh flink|expansion|kafka ...
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
declare -A MAIN=(
  [flink]=org.apache.beam.runners.flink.FlinkJobServerDriver
  [expansion]=org.apache.beam.sdk.expansion.service.ExpansionService
  [kafka]=kafka.Kafka
)
for name in "$@"; do
  dir="$here/$name"
  [ -n "${MAIN[$name]:-}" ] || { echo "unknown profile $name" >&2; exit 2; }
  if [ ! -f "$dir/launcher.jar" ] || [ "$dir/pom.xml" -nt "$dir/launcher.jar" ]; then
    rm -rf "$dir/lib"
    mvn -q -B -f "$dir/pom.xml" dependency:copy-dependencies -DoutputDirectory="$dir/lib" >&2
    tmp="$(mktemp -d)"
    {
      echo "Manifest-Version: 1.0"
      echo "Main-Class: ${MAIN[$name]}"
      printf 'Class-Path:'
      for jar in "$dir"/lib/*.jar; do printf ' \n lib/%s' "$(basename "$jar")"; done
      printf '\n'
    } > "$tmp/MANIFEST.MF"
    jar --create --file "$dir/launcher.jar" --manifest "$tmp/MANIFEST.MF"
    rm -rf "$tmp"
  fi
  echo "$dir/launcher.jar"
done
