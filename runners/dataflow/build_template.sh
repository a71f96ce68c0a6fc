#!/usr/bin/env bash
# Builds the agent pipeline's Flex Template: its image (Cloud Build or docker) and its spec file.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: runners/dataflow/build_template.sh [--print-only] [--skip-image] [GCLOUD_FLAG...]

Builds the image from templates/agent_pipeline/Dockerfile, pushes it to IMAGE, then writes
the Flex Template spec (IMAGE + templates/agent_pipeline/metadata.json) to TEMPLATE.

  --print-only  print the spec instead of writing it, and build no image (works offline)
  --skip-image  write the spec for an IMAGE that is already pushed
  GCLOUD_FLAG   any other flag goes to `gcloud dataflow flex-template build`
                (e.g. --format=json, --max-workers=4, --enable-streaming-engine)

environment:
  IMAGE     required: where the image goes, e.g. REGION-docker.pkg.dev/PROJECT/REPO/agentflow:TAG
  PROJECT   required unless --print-only: the Google Cloud project
  BUCKET    bucket (no gs://) for the spec and the jobs' temp/staging files
  TEMPLATE  spec path (default: gs://$BUCKET/templates/agent_pipeline.json)
  REGION    Cloud Build region (default: Cloud Build's global pool)
  BUILDER   cloudbuild (default) or docker (a local engine that can push to IMAGE)
  CLOUDBUILD_FLAGS  extra flags for `gcloud builds submit` (e.g. --async, --service-account=...)
USAGE
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
print_only=0
skip_image=0
gcloud_flags=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --print-only) print_only=1; gcloud_flags+=("$arg") ;;
    --skip-image) skip_image=1 ;;
    *) gcloud_flags+=("$arg") ;;
  esac
done

if [ -z "${IMAGE:-}" ]; then usage >&2; echo "error: set IMAGE" >&2; exit 2; fi
if [ -z "${TEMPLATE:-}" ]; then
  if [ -z "${BUCKET:-}" ]; then usage >&2; echo "error: set BUCKET or TEMPLATE" >&2; exit 2; fi
  TEMPLATE="gs://$BUCKET/templates/agent_pipeline.json"
fi
project_flags=()
if [ "$print_only" = 0 ]; then
  if [ -z "${PROJECT:-}" ]; then usage >&2; echo "error: set PROJECT" >&2; exit 2; fi
  project_flags=(--project "$PROJECT")
fi

if [ "$print_only" = 0 ] && [ "$skip_image" = 0 ]; then
  case "${BUILDER:-cloudbuild}" in
    cloudbuild)
      # Source upload honours .gitignore (no .gcloudignore here), so runners/*/lib and .venv stay behind.
      # shellcheck disable=SC2086
      gcloud builds submit "$root" "${project_flags[@]}" ${REGION:+--region "$REGION"} \
        --config "$root/runners/dataflow/cloudbuild.yaml" --substitutions "_IMAGE=$IMAGE" ${CLOUDBUILD_FLAGS:-}
      ;;
    docker)
      docker build -f "$root/templates/agent_pipeline/Dockerfile" -t "$IMAGE" "$root"
      docker push "$IMAGE"
      ;;
    *) echo "error: BUILDER must be cloudbuild or docker" >&2; exit 2 ;;
  esac
fi

locations=()
if [ -n "${BUCKET:-}" ]; then
  locations=(--temp-location "gs://$BUCKET/tmp" --staging-location "gs://$BUCKET/staging")
fi
gcloud dataflow flex-template build "$TEMPLATE" "${project_flags[@]}" \
  --image "$IMAGE" --sdk-language PYTHON \
  --metadata-file "$root/templates/agent_pipeline/metadata.json" \
  "${locations[@]}" "${gcloud_flags[@]}"
