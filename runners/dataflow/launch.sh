#!/usr/bin/env bash
# Launch the Flex Template built by build_template.sh; extra arguments are NAME=VALUE parameters.
#   PROJECT=p REGION=r BUCKET=b runners/dataflow/launch.sh input_subscription=projects/p/subscriptions/s \
#     output_topic=projects/p/topics/decisions store=vespa:https://vespa.example:8080
set -euo pipefail
: "${PROJECT:?set PROJECT}" "${REGION:?set REGION}" "${BUCKET:?set BUCKET}"
[ $# -gt 0 ] || { echo "usage: $0 NAME=VALUE ..." >&2; exit 2; }
params="$(IFS=,; echo "$*")"
gcloud dataflow flex-template run "agentflow-$(date +%Y%m%d-%H%M%S)" --project "$PROJECT" --region "$REGION" \
  --template-file-gcs-location "gs://$BUCKET/templates/agentflow-agent.json" \
  --temp-location "gs://$BUCKET/tmp" --parameters "$params"
