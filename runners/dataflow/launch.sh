#!/usr/bin/env bash
# Starts a Dataflow job from the agent pipeline's Flex Template (built by build_template.sh).
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: runners/dataflow/launch.sh NAME=VALUE... [GCLOUD_FLAG...]

NAME=VALUE  a template parameter: a flag of pipelines/agent_pipeline.py without its dashes
            (see templates/agent_pipeline/metadata.json); values may contain commas
GCLOUD_FLAG any --flag goes to `gcloud dataflow flex-template run`
            (e.g. --max-workers=4, --worker-machine-type=n2-standard-4, --service-account-email=...)

environment:
  PROJECT   required: the Google Cloud project
  REGION    required: the Dataflow region
  BUCKET    bucket (no gs://) of the spec and of the job's temp files
  TEMPLATE  spec path (default: gs://$BUCKET/templates/agent_pipeline.json)
  JOB_NAME  default: agentflow-<UTC date-time>

example:
  PROJECT=p REGION=us-central1 BUCKET=b runners/dataflow/launch.sh \
    input_subscription=projects/p/subscriptions/events output_topic=projects/p/topics/decisions \
    dead_letter_topic=projects/p/topics/dead-letters store=vespa:https://vespa.example:8080
USAGE
}

params=()
gcloud_flags=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    -*) gcloud_flags+=("$arg") ;;
    [a-z]*=*) params+=("--parameters=^@@^$arg") ;;  # one pair per flag, with a delimiter no value uses
    *) usage >&2; echo "error: not NAME=VALUE or --flag: $arg" >&2; exit 2 ;;
  esac
done
if [ -z "${PROJECT:-}" ] || [ -z "${REGION:-}" ]; then usage >&2; echo "error: set PROJECT and REGION" >&2; exit 2; fi
if [ ${#params[@]} -eq 0 ]; then usage >&2; echo "error: give at least a source parameter" >&2; exit 2; fi
if [ -z "${TEMPLATE:-}" ]; then
  if [ -z "${BUCKET:-}" ]; then usage >&2; echo "error: set BUCKET or TEMPLATE" >&2; exit 2; fi
  TEMPLATE="gs://$BUCKET/templates/agent_pipeline.json"
fi
locations=()
if [ -n "${BUCKET:-}" ]; then
  locations=(--temp-location "gs://$BUCKET/tmp" --staging-location "gs://$BUCKET/staging")
fi

gcloud dataflow flex-template run "${JOB_NAME:-agentflow-$(date -u +%Y%m%d-%H%M%S)}" \
  --project "$PROJECT" --region "$REGION" --template-file-gcs-location "$TEMPLATE" \
  "${locations[@]}" "${params[@]}" "${gcloud_flags[@]}"
