#!/usr/bin/env python3
"""Discovery on the local AWS emulator: `warren plan` against the AWS CLI loop teams write.

Starts moto's server on a free loopback port, seeds an estate (clusters of different sizes,
task definition families with revisions shared by services, a third of them reading their
broker host from SSM parameters, the old Amazon MQ broker), then times, side by side:

- `warren plan --stats` (release build) over the whole region;
- the loop a team writes with the AWS CLI to find the services that point at the old broker:
  list clusters, list each cluster's services, describe each service, describe its task
  definition, read each SSM parameter it names.

Both must find the same services. Prints the times and warren's call counts.

    cargo build --release && benches/emulator.py [SERVICES]    # 200 by default

Needs moto's server (`scripts/test` installs it), boto3 (moto's own dependency) and the AWS
CLI (`pip install awscli`). Talks only to 127.0.0.1.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3

REGION = "eu-west-2"
ROOT = Path(__file__).resolve().parent.parent
WARREN = ROOT / "target" / "release" / "warren"
# Cluster sizes as shares of the estate: one large, one mid, two small.
SHARES = [0.55, 0.3, 0.12, 0.03]
SERVICES_PER_FAMILY = 3
REVISIONS = 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(log):
    port = free_port()
    server = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MOTO_ECS_SERVICE_RUNNING": "1"},
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(
                urllib.request.Request(endpoint + "/moto-api/reset", method="POST"), timeout=2
            )
            return server, endpoint
        except OSError:
            if server.poll() is not None:
                sys.exit(f"moto_server exited ({server.returncode}); see {log.name}")
            time.sleep(0.1)
    server.kill()
    sys.exit("moto_server did not answer within 30 s")


def seed(endpoint, services):
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
    )
    ecs = session.client("ecs", endpoint_url=endpoint)
    ssm = session.client("ssm", endpoint_url=endpoint)
    mq = session.client("mq", endpoint_url=endpoint)

    def broker(name):
        created = mq.create_broker(
            BrokerName=name,
            EngineType="RABBITMQ",
            EngineVersion="3.13",
            DeploymentMode="SINGLE_INSTANCE",
            HostInstanceType="mq.m5.large",
            PubliclyAccessible=False,
            AutoMinorVersionUpgrade=True,
            Users=[{"Username": "admin", "Password": "emulator-pass"}],
        )
        described = mq.describe_broker(BrokerId=created["BrokerId"])
        endpoint = described["BrokerInstances"][0]["Endpoints"][0]
        return created["BrokerId"], re.sub(r"^amqps://|:\d+$", "", endpoint)

    # The emulator gives every broker the same host: the new one is given by its endpoint.
    old_id, old_host = broker("emulator-old")

    families = -(-services // SERVICES_PER_FAMILY)
    parameters = []
    revisions = []
    for f in range(families):
        for r in range(REVISIONS):
            env = [
                {"name": "LOG_LEVEL", "value": "info"},
                {"name": "HTTP_PORT", "value": "8080"},
                {"name": "DATABASE_URL", "value": f"postgres://db-{f}.internal:5432/app"},
            ]
            secrets = []
            if f % 3 == 0:
                name = f"/emulator/fam-{f}/rabbit-host"
                if r == 0:
                    ssm.put_parameter(Name=name, Value=old_host, Type="String")
                    parameters.append(name)
                secrets.append({"name": "RABBITMQ_HOST", "valueFrom": name})
            else:
                env.append(
                    {"name": "SPRING_RABBITMQ_ADDRESSES", "value": f"amqps://{old_host}:5671"}
                )
            registered = ecs.register_task_definition(
                family=f"fam-{f}",
                containerDefinitions=[
                    {
                        "name": "app",
                        "image": "app:latest",
                        "memory": 256,
                        "environment": env,
                        "secrets": secrets,
                    }
                ],
            )
            revisions.append(registered["taskDefinition"]["taskDefinitionArn"])

    counts = [max(1, round(services * share)) for share in SHARES]
    counts[0] += services - sum(counts)
    clusters = []
    i = 0
    for c, count in enumerate(counts):
        cluster = f"emulator-{c}"
        ecs.create_cluster(clusterName=cluster)
        clusters.append((cluster, count))
        for _ in range(count):
            family = i // SERVICES_PER_FAMILY
            ecs.create_service(
                cluster=cluster,
                serviceName=f"svc-{i:04}",
                taskDefinition=revisions[family * REVISIONS + i % REVISIONS],
                desiredCount=1,
                launchType="FARGATE",
            )
            i += 1
    return {
        "old_id": old_id,
        "old_host": old_host,
        "clusters": clusters,
        "families": families,
        "parameters": len(parameters),
    }


# What a team writes: one CLI call per list page, service, task definition and parameter.
CLI_LOOP = r"""
set -euo pipefail
for cluster in $(aws ecs list-clusters --query 'clusterArns[]' --output text); do
  for service in $(aws ecs list-services --cluster "$cluster" --query 'serviceArns[]' --output text); do
    td=$(aws ecs describe-services --cluster "$cluster" --services "$service" \
      --query 'services[0].taskDefinition' --output text)
    found=$(aws ecs describe-task-definition --task-definition "$td" \
      --query 'taskDefinition.containerDefinitions[].[environment[].value, secrets[].valueFrom]' \
      --output text)
    if grep -qF "$OLD_HOST" <<<"$found"; then echo "$service"; continue; fi
    for parameter in $(tr '\t' '\n' <<<"$found" | grep '^/' || true); do
      value=$(aws ssm get-parameter --name "$parameter" --query 'Parameter.Value' --output text)
      if grep -qF "$OLD_HOST" <<<"$value"; then echo "$service"; break; fi
    done
  done
done
"""


def main():
    services = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for program in ["moto_server", "aws"]:
        if shutil.which(program) is None:
            sys.exit(f"{program} is not on PATH (moto: scripts/test installs it; pip install awscli)")
    if not WARREN.exists():
        sys.exit(f"{WARREN} is missing: run cargo build --release first")
    work = Path(tempfile.mkdtemp(prefix="warren-emulator-"))
    with open(work / "moto.log", "w") as log:
        server, endpoint = start_moto(log)
        try:
            started = time.time()
            seeded = seed(endpoint, services)
            print(
                f"seeded {services} services on {len(seeded['clusters'])} clusters "
                f"({', '.join(str(n) for _, n in seeded['clusters'])}), "
                f"{seeded['families'] * REVISIONS} task definitions, "
                f"{seeded['parameters']} parameters in {time.time() - started:.1f} s"
            )
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith("AWS_") or k == "AWS_CA_BUNDLE"
            }
            env.update(
                AWS_ENDPOINT_URL=endpoint,
                AWS_ACCESS_KEY_ID="test",
                AWS_SECRET_ACCESS_KEY="test",
                AWS_REGION=REGION,
                AWS_DEFAULT_REGION=REGION,
                AWS_EC2_METADATA_DISABLED="true",
                AWS_CONFIG_FILE=str(work / "none"),
                AWS_SHARED_CREDENTIALS_FILE=str(work / "none"),
                NO_COLOR="1",
            )
            plan = work / "plan.toml"
            plan.write_text(
                '[migration]\nname = "emulator"\n'
                f'[brokers.old]\nid = "{seeded["old_id"]}"\n'
                '[brokers.new]\nendpoints = ["amqps://b-new.mq.eu-west-2.amazonaws.com:5671"]\n'
            )
            started = time.time()
            run = subprocess.run(
                [str(WARREN), "plan", str(plan), "--format", "json", "--stats"],
                env=env,
                capture_output=True,
                text=True,
            )
            warren_seconds = time.time() - started
            if run.returncode != 0:
                sys.exit(f"warren plan failed ({run.returncode}):\n{run.stderr}")
            import json

            found_by_warren = len(json.loads(run.stdout)["unmanaged"])
            print(f"\nwarren plan --stats: {warren_seconds:.2f} s, {found_by_warren} services found")
            print(run.stderr.rstrip())

            started = time.time()
            loop = subprocess.run(
                ["bash", "-c", CLI_LOOP],
                env={**env, "OLD_HOST": seeded["old_host"]},
                capture_output=True,
                text=True,
            )
            cli_seconds = time.time() - started
            if loop.returncode != 0:
                sys.exit(f"the AWS CLI loop failed ({loop.returncode}):\n{loop.stderr}")
            found_by_cli = len(loop.stdout.split())
            print(f"\nAWS CLI loop: {cli_seconds:.1f} s, {found_by_cli} services found")
            print(f"\nwarren is {cli_seconds / warren_seconds:.0f} times faster")
            if found_by_cli != found_by_warren or found_by_warren != services:
                sys.exit(
                    f"the two found different services: warren {found_by_warren}, "
                    f"the loop {found_by_cli}, seeded {services}"
                )
        finally:
            server.kill()
            server.wait()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
