"""PII handling is linear in every field: a megabyte built to make rules rescan, or to make
libphonenumber read as much as it can, in the text, an attribute value or an id, costs at
most a fixed multiple of a megabyte of support prose in the same field, and twice the
input costs about twice the CPU (a quadratic rule would cost four times).

Events go through `parse_event` (normalisation, language detection, redaction,
pseudonyms) with the length caps lifted and a `locale` attribute, so phone numbers are
read in four numbering plans; the shapes are `benchmarks/pii_cost.py`'s. CPU time, not
wall time; each figure is the least of up to three tries, so a loaded machine does not
fail it."""
import pytest

from benchmarks.pii_cost import SHAPES, SIZE, TEXT_ONLY, cpu, plain

# Digit-dense text costs libphonenumber parses (one or two per number it reads): more per
# character than prose, but a bounded amount per digit group.
RATIO = 15.0
DOUBLING = 3.0
TRIES = 3
FIELDS = ("text", "attribute", "session_id")
CASES = [(shape, field) for shape in sorted(SHAPES) for field in FIELDS] + \
    [(shape, "text") for shape in sorted(TEXT_ONLY)]
_prose_cost = {}


def _prose(field: str) -> float:
  if field not in _prose_cost:
    _prose_cost[field] = min(cpu(field, plain(SIZE)) for _ in range(2))
  return _prose_cost[field]


@pytest.mark.parametrize("shape, field", CASES)
def test_megabyte_adversarial_field_is_linear(shape, field):
  value = {**SHAPES, **TEXT_ONLY}[shape](SIZE)[:SIZE]
  assert len(value) == SIZE
  halves, fulls = [], []
  for _ in range(TRIES):
    halves.append(cpu(field, value[:SIZE // 2]))
    fulls.append(cpu(field, value))
    half, full, prose = min(halves), min(fulls), _prose(field)
    if full < RATIO * prose and full < DOUBLING * half:
      break
  assert full < RATIO * prose, f"{shape} in {field}: {full:.2f}s CPU vs {prose:.2f}s for plain prose"
  assert full < DOUBLING * max(half, 0.02 * prose), f"{shape} in {field}: {half:.2f}s for half, {full:.2f}s for all"
