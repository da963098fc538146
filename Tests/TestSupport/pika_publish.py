#!/usr/bin/python3
"""Publishes messages with pika (Debian's python3-pika), publisher-confirmed, for the tests that need a
producer other than our own client: pika sends header tables rabbitmq-c refuses to copy (empty keys).

    pika_publish.py URL < messages.json
messages.json: a list of {"exchange", "routing_key", "body" (text), "headers" (JSON object, any keys),
"reply_to", "correlation_id", "message_id"}; missing keys are not set. Exits 1 naming the message the
broker did not confirm."""
import json
import sys

import pika

conn = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
ch = conn.channel()
ch.confirm_delivery()
for i, m in enumerate(json.load(sys.stdin)):
    props = pika.BasicProperties(content_type="application/json", delivery_mode=2, headers=m.get("headers"),
                                 reply_to=m.get("reply_to"), correlation_id=m.get("correlation_id"),
                                 message_id=m.get("message_id"))
    try:
        ch.basic_publish(exchange=m.get("exchange", ""), routing_key=m["routing_key"], body=m.get("body", "").encode(),
                         properties=props, mandatory=True)
    except pika.exceptions.AMQPError as e:
        sys.exit(f"message {i} was not confirmed: {e!r}")
conn.close()
