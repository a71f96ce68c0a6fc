#!/usr/bin/env bash
# Build the agentflow Flex Template spec (and, unless --print-only, its image with Cloud Build).
#   PROJECT=p REGION=r BUCKET=b runners/dataflow/build_template.sh [--print-only]
# IMAGE defaults to gcr.io/$PROJECT/agentflow-agent:latest.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
: "${PROJECT:?set PROJECT}" "${BUCKET:?set BUCKET}"
IMAGE="${IMAGE:-gcr.io/$PROJECT/agentflow-agent:latest}"
SPEC="gs://$BUCKET/templates/agentflow-agent.json"
if [ "${1:-}" != "--print-only" ]; then
  gcloud builds submit "$root" --project "$PROJECT" --tag "$IMAGE" \
    --config <(printf 'steps:\n- name: gcr.io/cloud-builders/docker\n  args: [build, -f, templates/agent_pipeline/Dockerfile, -t, %s, .]\nimages: [%s]\n' "$IMAGE" "$IMAGE")
fi
gcloud dataflow flex-template build "$SPEC" --image "$IMAGE" --sdk-language PYTHON \
  --metadata-file "$root/templates/agent_pipeline/metadata.json" "$@"
