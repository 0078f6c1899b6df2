"""A consumer from outside the project: Python's confluent-kafka (PyPI) with its schema registry
client and Avro deserializer, as a data team would read the pipeline's topics.

Reads each topic given from the beginning to its end offsets as they are when it starts, and
prints one JSON object per record on stdout:

    {"topic": ..., "partition": 0, "offset": 12, "key": "AAPL", "schema_id": 3, "value": {...}}

The value is what `AvroDeserializer` returns, fetching the writer schema of each record's id from
the registry: timestamp-millis fields come back as datetimes and are printed as epoch
milliseconds, bytes as base64. Nothing in it knows this project's schemas. Basic auth, when the
registry needs it, comes from SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD.

    python3 tests/registry_consumer.py --brokers 127.0.0.1:9092 \
        --registry http://127.0.0.1:8081/apis/ccompat/v7 TOPIC [TOPIC...]

Exit status 0 when every record was read, 1 with the reason on stderr otherwise.
"""

import argparse
import base64
import datetime
import json
import os
import sys
import uuid

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def plain(value):
    """The JSON form of a deserialized value."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, datetime.datetime):
        return (value - EPOCH) // datetime.timedelta(milliseconds=1)
    if isinstance(value, (bytes, bytearray)):
        return {"base64": base64.b64encode(value).decode("ascii")}
    return value


def read_topic(consumer, deserializer, topic, timeout_s):
    """Every record of `topic` up to its end offsets now, in partition then offset order."""
    metadata = consumer.list_topics(topic, timeout=timeout_s)
    if topic not in metadata.topics or metadata.topics[topic].error is not None:
        raise RuntimeError(f"topic {topic} not found")
    ends = {}
    for partition in metadata.topics[topic].partitions:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout_s
        )
        if high > low:
            ends[partition] = (low, high)
    consumer.assign([TopicPartition(topic, p, low) for p, (low, _) in ends.items()])
    remaining = {p: high for p, (_, high) in ends.items()}
    out = []
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout_s)
    while remaining:
        if datetime.datetime.now() > deadline:
            raise RuntimeError(f"timed out reading {topic}: still to read {remaining}")
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error() is not None:
            raise RuntimeError(f"{topic}: {message.error()}")
        partition, offset = message.partition(), message.offset()
        if partition not in remaining or offset >= remaining[partition]:
            continue
        raw = message.value()
        value = deserializer(raw, SerializationContext(topic, MessageField.VALUE))
        key = message.key()
        out.append(
            {
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "key": None if key is None else key.decode("utf-8"),
                "schema_id": int.from_bytes(raw[1:5], "big"),
                "value": plain(value),
            }
        )
        if offset + 1 >= remaining[partition]:
            del remaining[partition]
    consumer.unassign()
    return sorted(out, key=lambda r: (r["partition"], r["offset"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--registry", required=True, help="Confluent-compatible registry URL")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per topic")
    parser.add_argument("topics", nargs="+")
    args = parser.parse_args()

    # httpx's default here is no timeout at all: one stuck registry connection hung a run.
    registry_conf = {"url": args.registry, "timeout": 30}
    if os.environ.get("SCHEMA_REGISTRY_USERNAME"):
        registry_conf["basic.auth.user.info"] = "{}:{}".format(
            os.environ["SCHEMA_REGISTRY_USERNAME"], os.environ.get("SCHEMA_REGISTRY_PASSWORD", "")
        )
    registry = SchemaRegistryClient(registry_conf)
    deserializer = AvroDeserializer(registry)
    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": f"registry-consumer-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        for topic in args.topics:
            for record in read_topic(consumer, deserializer, topic, args.timeout):
                sys.stdout.write(json.dumps(record) + "\n")
    except Exception as error:  # noqa: BLE001 - any failure is reported and fails the run
        print(f"registry_consumer: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
