"""The streaming DirectRunner with Pub/Sub: its read pulls up to 1,000 messages per bundle, and
its DoFns are set up once per process instead of once per bundle.

Beam's DirectRunner (2.62) reads Pub/Sub in `_PubSubReadEvaluator`, which opens a new
subscriber client for each pull and asks for at most 10 messages. Its one worker thread
pulls once per round of bundles, so when events arrive faster than that, every bundle
(and every model call) stays at 10 events and the backlog grows without bound: at 50
events/s on the 2-core machine, p50 latency was 21 s (benchmarks/streaming_latency.py).
This evaluator pulls what is waiting, up to `MAX_MESSAGES`, through one client per
process, so bundles grow with the backlog and shrink again when it is gone. Messages are
acknowledged on receipt, as Beam's evaluator does. Only the DirectRunner uses it; other
runners read Pub/Sub with their own IO.

The same DirectRunner evaluates every ParDo of every bundle by round-tripping its DoFn
through pickle, building a new `DoFnRunner` and calling the DoFn's `setup` and `teardown`
around the bundle. In a streaming job every pull is a bundle, so each pull paid that for
each of the graph's ~20 steps (a profile of `benchmarks/streaming_latency.py --profile`
put a fifth of the job's CPU in `start_bundle`/`finish_bundle`). `_KeptDoFnParDoEvaluator`
keeps each step's DoFn set up across bundles, as every other runner does, and what Beam's
`get_dofn_specs` found in it (an inspection of every method, repeated several times per
bundle); the per-bundle pickle test (which only checks that the DoFn pickles) is left out.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Dict, List

from agentflow.io import direct_timers
from agentflow.io.pubsub_portable import message_timestamp
from agentflow.keepalive import KeptObjects

MAX_MESSAGES = 1000
PULL_TIMEOUT_S = 30

_SUBSCRIBERS = KeptObjects(close=lambda client: client.close())


def install() -> None:
  """Makes the DirectRunner in this process read Pub/Sub with `_BatchPullEvaluator`, run
  ParDos with `_KeptDoFnParDoEvaluator` and scan timers through `direct_timers`' index."""
  from apache_beam.runners.direct.direct_runner import _DirectReadFromPubSub
  from apache_beam.runners.direct.transform_evaluator import TransformEvaluatorRegistry
  from apache_beam.transforms.core import ParDo
  TransformEvaluatorRegistry._test_evaluators_overrides[_DirectReadFromPubSub] = _evaluator_class()
  TransformEvaluatorRegistry._test_evaluators_overrides[ParDo] = _pardo_evaluator_class()
  _keep_dofn_specs()
  direct_timers.install()


def _keep_dofn_specs() -> None:
  """Beam's `userstate.get_dofn_specs` inspects every method of a DoFn, and the DirectRunner
  and `DoFnRunner` ask it several times per bundle (is it stateful? has it timers?), and
  `core.get_function_arguments` each method's signature: for the DoFns
  `_KeptDoFnParDoEvaluator` keeps, the first answers are kept (a DoFn's methods do not change)."""
  from apache_beam.transforms import userstate
  beams = userstate.get_dofn_specs
  if getattr(beams, "keeps_specs", False):
    return

  def get_dofn_specs(dofn):
    entry = _KEPT.get(id(dofn))
    if entry is None or entry["dofn"] is not dofn:
      return beams(dofn)
    if "specs" not in entry:
      entry["specs"] = beams(dofn)
    return entry["specs"]

  get_dofn_specs.keeps_specs = True
  userstate.get_dofn_specs = get_dofn_specs

  # Each new DoFnRunner also inspects the signatures of the DoFn's methods (MethodWrapper).
  from apache_beam.transforms import core
  beams_arguments = core.get_function_arguments

  def get_function_arguments(obj, func):
    entry = _KEPT.get(id(obj))
    if entry is None or entry["dofn"] is not obj:
      return beams_arguments(obj, func)
    arguments = entry.setdefault("arguments", {})
    if func not in arguments:
      arguments[func] = beams_arguments(obj, func)
    args, defaults = arguments[func]
    return list(args), list(defaults)

  core.get_function_arguments = get_function_arguments


def _subscriber():
  """One subscriber client per process and emulator host, closed at exit."""
  return _SUBSCRIBERS.get(os.environ.get("PUBSUB_EMULATOR_HOST", ""), _new_subscriber)


def _new_subscriber():
  from google.cloud import pubsub
  return pubsub.SubscriberClient()


@functools.cache
def _evaluator_class():
  from apache_beam.io.gcp.pubsub import PubsubMessage
  from apache_beam.runners.direct.transform_evaluator import _PubSubReadEvaluator

  class _BatchPullEvaluator(_PubSubReadEvaluator):

    def _read_from_pubsub(self, timestamp_attribute) -> List[tuple]:
      client = _subscriber()
      response = client.pull(subscription=self._sub_name, max_messages=MAX_MESSAGES, timeout=PULL_TIMEOUT_S)
      received = response.received_messages
      if received:
        client.acknowledge(subscription=self._sub_name, ack_ids=[m.ack_id for m in received])
      return [(message_timestamp(m.message, timestamp_attribute), PubsubMessage._from_message(m.message))
              for m in received]

  return _BatchPullEvaluator


@functools.cache
def _pardo_evaluator_class():
  from apache_beam import coders, pvalue
  from apache_beam.runners.common import DoFnRunner, DoFnState
  from apache_beam.runners.direct.direct_userstate import DirectUserStateContext
  from apache_beam.runners.direct.transform_evaluator import _ParDoEvaluator, _TaggedReceivers
  from apache_beam.runners.direct.util import TransformResult
  from apache_beam.transforms.userstate import get_dofn_specs, is_stateful_dofn
  from apache_beam.utils import counters

  class _KeptDoFnParDoEvaluator(_ParDoEvaluator):
    """Beam 2.62's `_ParDoEvaluator` with the step's own DoFn, set up on its first bundle and
    never torn down (the process ends with the job), in pipelines that read Pub/Sub; other
    pipelines the DirectRunner runs in the same process (tests) keep Beam's evaluator."""

    def start_bundle(self):
      self._keeps = _reads_pubsub(self._evaluation_context)
      if not self._keeps:
        return super().start_bundle()
      transform = self._applied_ptransform.transform
      self._tagged_receivers = _TaggedReceivers(self._evaluation_context)
      for output_tag in self._applied_ptransform.outputs:
        output_pcollection = pvalue.PCollection(None, tag=output_tag)
        output_pcollection.producer = self._applied_ptransform
        self._tagged_receivers[output_tag] = self._evaluation_context.create_bundle(output_pcollection)
        self._tagged_receivers[output_tag].tag = output_tag
      self._counter_factory = counters.CounterFactory()
      dofn = transform.dofn
      _kept(dofn, "dofn", lambda: dofn)
      self.user_state_context = None
      self.user_timer_map = {}
      if is_stateful_dofn(dofn):
        kv_type_hint = self._applied_ptransform.inputs[0].element_type
        self.key_coder = (coders.registry.get_coder(kv_type_hint).key_coder()
                          if kv_type_hint and kv_type_hint != Any else coders.registry.get_coder(Any))
        self.user_state_context = DirectUserStateContext(self._step_context, dofn, self.key_coder)
        _, all_timer_specs = get_dofn_specs(dofn)
        for timer_spec in all_timer_specs:
          self.user_timer_map[f"user/{timer_spec.name}"] = timer_spec
      self.runner = DoFnRunner(
          dofn, getattr(transform, "args", []), getattr(transform, "kwargs", {}), self._side_inputs,
          self._applied_ptransform.inputs[0].windowing, tagged_receivers=self._tagged_receivers,
          step_name=self._applied_ptransform.full_label, state=DoFnState(self._counter_factory),
          user_state_context=self.user_state_context)
      if not _kept(dofn, "set_up", lambda: False):
        self.runner.setup()
        _KEPT[id(dofn)]["set_up"] = True
      self.runner.start()

    def finish_bundle(self):
      if not self._keeps:
        return super().finish_bundle()
      self.runner.finish()
      bundles = list(self._tagged_receivers.values())
      result_counters = self._counter_factory.get_counters()
      if self.user_state_context:
        self.user_state_context.commit()
        self.user_state_context.reset()
      return TransformResult(self, bundles, [], result_counters, None)

  return _KeptDoFnParDoEvaluator


def _reads_pubsub(evaluation_context) -> bool:
  """Whether the pipeline `evaluation_context` runs has a Pub/Sub read among its roots."""
  from apache_beam.runners.direct.direct_runner import _DirectReadFromPubSub
  found = getattr(evaluation_context, "_agentflow_reads_pubsub", None)
  if found is None:
    found = any(isinstance(t.transform, _DirectReadFromPubSub) for t in evaluation_context._root_transforms)
    evaluation_context._agentflow_reads_pubsub = found
  return found


# What `_KeptDoFnParDoEvaluator` keeps per DoFn, by id; the DoFn is held too, so its id is never reused.
_KEPT: Dict[int, Dict[str, Any]] = {}


def _kept(dofn, name: str, compute):
  """`compute()` the first time it is asked for `dofn`, the kept value after."""
  entry = _KEPT.setdefault(id(dofn), {"dofn": dofn})
  if name not in entry:
    entry[name] = compute()
  return entry[name]
