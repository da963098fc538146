#!/usr/bin/env python3
"""A real S3-compatible server for the delivery tests: moto's server mode on a free loopback port, with request
authentication ON (INITIAL_NO_AUTH_ACTION_COUNT), so every request must carry a valid AWS Signature V4 of an
IAM key moto knows. Sets up a user, its key (written to the credentials file as ACCESS_KEY_ID:SECRET), a policy
and the bucket; prints "READY <port>"; then answers commands on stdin, one JSON line each:
    GET <key>   -> {"sha256": ..., "bytes": ..., "content_type": ...} or {"error": ...}
    LIST        -> {"keys": [...]}
Needs moto[server] and boto3 (ops/deps installs them when the python3 on PATH lacks them).

    s3_server.py --bucket NAME --credentials FILE
"""
import argparse, hashlib, json, os, sys

os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "4"   # the user, its key, its policy, the bucket; then auth is on
import boto3
from moto.server import ThreadedMotoServer

ap = argparse.ArgumentParser()
ap.add_argument("--bucket", required=True)
ap.add_argument("--credentials", required=True)
ap.add_argument("--region", default="us-east-1")
args = ap.parse_args()

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
port = server.get_host_and_port()[1]
endpoint = f"http://127.0.0.1:{port}"
iam = boto3.client("iam", endpoint_url=endpoint, region_name=args.region, aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="darkroom")
key = iam.create_access_key(UserName="darkroom")["AccessKey"]
iam.put_user_policy(UserName="darkroom", PolicyName="s3", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=args.region,
                  aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket=args.bucket)
with open(args.credentials, "w") as f:
    f.write(f"{key['AccessKeyId']}:{key['SecretAccessKey']}\n")
print("READY", port, flush=True)

for line in sys.stdin:
    cmd = line.strip().split(" ", 1)
    try:
        if cmd[0] == "GET":
            obj = s3.get_object(Bucket=args.bucket, Key=cmd[1])
            data = obj["Body"].read()
            out = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "content_type": obj.get("ContentType")}
        elif cmd[0] == "LIST":
            out = {"keys": [o["Key"] for o in s3.list_objects_v2(Bucket=args.bucket).get("Contents", [])]}
        else:
            out = {"error": f"unknown command {cmd[0]}"}
    except Exception as e:  # answered, not raised: the test prints it
        out = {"error": str(e)}
    print(json.dumps(out), flush=True)
# stdin closed: the test is gone (stopped or crashed); so are we.
os._exit(0)
