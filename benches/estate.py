#!/usr/bin/env python3
"""Writes a large rehearsal estate for measuring warren: `benches/estate.py N DIR` writes
DIR/world.json and DIR/plan.toml with N services over 10 clusters, shaped like benches/plan.rs
(a publish/consume chain, a third of the hosts behind SSM parameters, 20 other variables per
container, one service in fifty left out of the plan).

`benches/estate.py N DIR --waves W --rollout S` shapes it for a rehearsal apply instead: the
chain runs through W layers of N/W services (so the plan has W waves), every rollout takes S
seconds, and every host is an env value (nothing is `manual`)."""
import json
import sys
from pathlib import Path

OLD = "b-1111.mq.eu-west-2.amazonaws.com"
NEW = "b-2222.mq.eu-west-2.amazonaws.com"


def main(n: int, out: Path, waves: int = 0, rollout: float = 0.0) -> None:
    out.mkdir(parents=True, exist_ok=True)
    clusters = [{"name": f"cluster-{c}", "services": []} for c in range(10)]
    tds, params, queues, bindings = [], {}, [], []
    plan = ['[migration]\nname = "estate"\n[brokers.old]\nid = "b-1111"\n[brokers.new]\nid = "b-2222"\n']
    for i in range(n):
        name = f"svc-{i:05}"
        env = {f"SETTING_{k}": f"value-{k}-{i}" for k in range(20)}
        secrets = {}
        if i % 3 == 0 and not waves:
            p = f"/estate/{name}/rabbit-host"
            params[p] = OLD
            secrets["SPRING_RABBITMQ_HOST"] = p
        else:
            env["SPRING_RABBITMQ_ADDRESSES"] = f"amqps://u:p@{OLD}:5671/esr"
        tds.append({"family": name, "revision": 1,
                    "containers": [{"name": "app", "environment": env, "secrets": secrets}]})
        service = {"name": name, "task_definition": f"{name}:1", "desired": 1, "running": 1}
        if rollout:
            service["rollout_seconds"] = rollout
        clusters[i % 10]["services"].append(service)
        queues.append({"vhost": "/", "name": f"q.{i}", "messages": 0, "consumers": 1})
        # Chained: each service publishes to the next one's queue; in layers, to the service of
        # the next layer in the same column (the last layer publishes to nobody).
        if waves:
            nxt = i + n // waves
            if nxt < n:
                bindings.append({"vhost": "/", "exchange": f"ex.{i}", "queue": f"q.{nxt}", "routing_key": "#"})
        else:
            bindings.append({"vhost": "/", "exchange": f"ex.{i}", "queue": f"q.{(i + 1) % n}", "routing_key": "#"})
        if waves or i % 50 != 49:
            plan.append(f'[[services]]\ncluster = "cluster-{i % 10}"\nname = "{name}"\nbroker = "new"\n'
                        f'publishes = ["ex.{i}"]\nconsumes = ["q.{i}"]\n')
    world = {
        "version": 1,
        "region": "eu-west-2",
        "brokers": [
            {"id": "b-1111", "state": "RUNNING", "endpoints": [f"amqps://{OLD}:5671"],
             "queues": queues, "bindings": bindings},
            {"id": "b-2222", "state": "RUNNING", "endpoints": [f"amqps://{NEW}:5671"], "queues": []},
        ],
        "clusters": clusters,
        "task_definitions": tds,
        "parameters": params,
    }
    (out / "world.json").write_text(json.dumps(world, indent=1) + "\n")
    (out / "plan.toml").write_text("\n".join(plan))


if __name__ == "__main__":
    args = sys.argv[1:]
    options = {"--waves": 0, "--rollout": 0.0}
    while len(args) > 2:
        flag, value = args.pop(2), args.pop(2)
        options[flag] = type(options[flag])(value)
    main(int(args[0]), Path(args[1]), options["--waves"], options["--rollout"])
