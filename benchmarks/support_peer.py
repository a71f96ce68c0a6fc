"""The support agent written by hand with no Beam: the peer every latency row is measured against.

  python -m benchmarks.support_peer --input_subscription S --output_topic T [--dead_letter_topic D]
                                    [--store URI] [--model_backend onnx] [other agentflow flags; Beam's are ignored]
  python -m benchmarks.support_peer --kafka_bootstrap H:P --input_kafka_topic I --output_kafka_topic O
                                    [--dead_letter_kafka_topic D] [...]

One loop in one process does the graph's work with the library's own pieces, built by
`agentflow.job.components` from the same flags: pull what is waiting (long-polling up to
2 s, up to 1,000 messages), parse each message with `parse_event`, embed the batch with the
model handler, upsert the events into the store, query the store (exact cosine over the
knowledge), decide with the same policy, publish one decision per event in one call, ack.
Given `--input_kafka_topic`, the loop is `kafka_relay.py`'s instead of `pubsub_relay.py`'s:
poll what is waiting (up to 0.2 s), the same agent, one message per decision keyed by its
event id, flush, commit.
What it leaves out is what a runner adds: bundles, state (the graph's Dedupe is a keyed
stateful step; redeliveries cannot happen in this loop's runs) and the per-stage plumbing.
`streaming_latency.py --job peer` runs it.
"""
from __future__ import annotations

import functools
import signal
import sys
from collections import defaultdict

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from agentflow.job import components, graph_config
from agentflow.options import AgentflowOptions
from agentflow.stages.preprocess import InvalidEvent, parse_event, payload_text
from agentflow.types import DeadLetter, Retrieval

from benchmarks import kafka_relay, pubsub_relay


class SupportPeer:
  """The agent's steps for a batch of raw messages, outside Beam."""

  def __init__(self, opts: AgentflowOptions):
    self.handler, self.store, self.policy = components(opts)
    config = graph_config(opts, self.store, self.policy)
    self.preprocess, self.retrieve = config.preprocess, config.retrieve
    self.model = self.handler.load_model()
    self.store.open()
    self.policy.setup()

  def close(self):
    self.policy.teardown()
    self.store.close()

  def handle(self, payloads):
    """(decisions, dead letters) for `payloads`, one of the two per payload."""
    events, dead = [], []
    for raw in payloads:
      try:
        events.append(parse_event(raw, self.preprocess))
      except InvalidEvent as e:
        dead.append(DeadLetter(stage="preprocess", reason=e.reason, error=str(e), payload=payload_text(raw)))
    if not events:
      return [], dead
    vectors = self.handler.embed(self.model, [e.text for e in events])
    events = [e.with_embedding(v, self.handler.model_id) for e, v in zip(events, vectors)]
    self.store.upsert([e.to_document() for e in events])
    groups = defaultdict(list)
    for i, event in enumerate(events):
      groups[self.retrieve.filter_for(event)].append(i)
    decisions = [None] * len(events)
    for flt, indices in groups.items():
      hits = self.store.query(vectors[indices], self.retrieve.k + 1, flt, [events[i].text for i in indices])
      for i, event_hits in zip(indices, hits):
        kept = [h for h in event_hits if h.id != events[i].doc_id][:self.retrieve.k]
        decisions[i] = self.policy.decide(Retrieval(event=events[i], hits=kept))
    return decisions, dead


def relay_for(opts: AgentflowOptions):
  """The relay loop the flags name, as `relay(stop, handle)`: Kafka given `--input_kafka_topic`, else Pub/Sub."""
  if opts.input_kafka_topic:
    return functools.partial(kafka_relay.relay, opts.kafka_bootstrap, opts.input_kafka_topic,
                             opts.output_kafka_topic, dead_topic=opts.dead_letter_kafka_topic)
  if not opts.input_subscription or not opts.output_topic:
    sys.exit("give --input_subscription and --output_topic (or --input_kafka_topic, --output_kafka_topic and "
             "--kafka_bootstrap)")
  return functools.partial(pubsub_relay.relay, opts.input_subscription, opts.output_topic,
                           dead_topic=opts.dead_letter_topic)


def serve(peer: SupportPeer, relay, stop) -> int:
  """Takes, handles and sends on with `relay(stop, handle)` until `stop()` is true; returns the messages handled."""
  def handle(datas):
    decisions, dead = peer.handle(datas)
    return [d.to_json().encode() for d in decisions], [d.to_json().encode() for d in dead]
  try:
    return relay(stop, handle)
  finally:
    peer.close()


def main(argv=None):
  options = PipelineOptions(argv)
  options.view_as(StandardOptions).streaming = True  # what --model_backend auto resolves by
  opts = options.view_as(AgentflowOptions)
  relay = relay_for(opts)
  stopping = []
  signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
  handled = serve(SupportPeer(opts), relay, lambda: stopping)
  print(f"handled {handled} messages", file=sys.stderr)


if __name__ == "__main__":
  main()
