#!/usr/bin/env python3
"""A producer in Python (pika), written from docs/protocol.md alone.

Publishes jobs to `darkroom.jobs` (routing key = size class), listens on an exclusive
reply queue, prints each event and saves the PNGs.

    /usr/bin/python3 examples/pika_producer.py --url amqp://guest:guest@127.0.0.1:5672/ \
        --class small --prompt "red circle" --prompt "blue square" --size 64 --out out/pika

A text job (a text-to-image model such as the shipped tiny-scenes; free-text prompt, optional negative prompt):

    /usr/bin/python3 examples/pika_producer.py --class small --model tiny-scenes --size 64 \
        --prompt "a red circle above a blue square" --out out/pika-text
"""
import argparse
import json
import os
import sys
import uuid

import pika


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default=os.environ.get("DARKROOM_BROKER_URLS", "amqp://guest:guest@127.0.0.1:5672/").split(",")[0])
    ap.add_argument("--namespace", default="darkroom")
    ap.add_argument("--class", dest="size_class", default="small")
    ap.add_argument("--model", help="a model the worker serves (default: its default model)")
    ap.add_argument("--prompt", action="append", default=[])
    ap.add_argument("--negative-prompt", help="text models: the negative prompt (counts with guidance > 1)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--preview", action="store_true")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--out", default="out/pika")
    args = ap.parse_args()
    prompts = args.prompt or ["red circle"]
    os.makedirs(args.out, exist_ok=True)

    conn = pika.BlockingConnection(pika.URLParameters(args.url))
    ch = conn.channel()
    ch.confirm_delivery()
    reply = ch.queue_declare(queue="", exclusive=True, auto_delete=True).method.queue

    pending = {}
    for i, prompt in enumerate(prompts):
        job_id = f"pika-{uuid.uuid4().hex[:12]}"
        body = {"v": 1, "id": job_id, "prompt": prompt, "width": args.size, "height": args.size,
                "seed": args.seed + i, "preview": args.preview}
        if args.steps:
            body["steps"] = args.steps
        if args.model:
            body["model"] = args.model
        if args.negative_prompt is not None:
            body["negative_prompt"] = args.negative_prompt
        ch.basic_publish(
            exchange=f"{args.namespace}.jobs", routing_key=args.size_class, body=json.dumps(body),
            properties=pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                            correlation_id=job_id, reply_to=reply, message_id=job_id),
            mandatory=True)
        pending[job_id] = prompt
        print(f"submitted {job_id}: {prompt}")

    failed = 0
    for method, props, body in ch.consume(reply, auto_ack=True, inactivity_timeout=args.timeout):
        if method is None:
            print("timed out waiting for events", file=sys.stderr)
            return 2
        headers = props.headers or {}
        kind, job_id = headers.get("darkroom-event"), headers.get("darkroom-job")
        if kind == "image":
            path = os.path.join(args.out, f"{job_id}-{headers.get('darkroom-index', 0)}.png")
            with open(path, "wb") as f:
                f.write(body)
            print(f"{job_id}: image {path} seed={headers.get('darkroom-seed')}")
        elif kind == "progress":
            ev = json.loads(body)
            print(f"{job_id}: step {ev['step']}/{ev['steps']} eta {ev.get('eta_ms')} ms")
        else:
            print(f"{job_id}: {kind} {body.decode()}")
        if kind in ("completed", "failed"):
            failed += kind == "failed"
            pending.pop(job_id, None)
            if not pending:
                break
    conn.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
