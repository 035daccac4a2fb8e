"""Compare the Sieve greedy, a baseline and CP-SAT on one sampled layer (executed in CI).

Every solver consumes the same DAG and cost model; every schedule passes the checker.
"""

from sieveopt.check import check
from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.pipeline import build_dag
from sieveopt.solvers import solve

model = load_model("gpt-oss-120b")
system = load_system("sieve-b200-hbm3e-pim", num_gpus=4)
layer = sample_layers(model, system, batch=32, num_layers=1, seed=0)[0]
dag, cost = build_dag(layer)

results = {name: solve(name, dag, layer, cost) for name in ("sieve", "duplex")}
results["cpsat"] = solve("cpsat", dag, layer, cost, time_limit_s=5, workers=1, hint=results["sieve"])
for name, res in results.items():
    assert check(res.schedule, dag).ok
    gap = "" if res.bound_ns is None else f", bound {res.bound_ns / 1e3:.1f} us"
    print(f"{name:7s} {res.status:9s} makespan {res.makespan_ns / 1e3:7.1f} us{gap}")
assert results["cpsat"].makespan_ns <= results["sieve"].makespan_ns   # never worse than its hint
