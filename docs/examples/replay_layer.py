"""Replay a schedule on the cycle-level DRAM/PIM and NVLink simulators (executed in CI).

The DAG's durations come from the cost model; the replay's come from the simulators, so the
difference is the cost model's error (per task kind) plus contention the model ignores.
"""

from sieveopt.instance import sample_layers
from sieveopt.models.catalog import load_model, load_system
from sieveopt.pipeline import run_layer
from sieveopt.validation.replay import replay

model = load_model("qwen3-30b-a3b")
system = load_system("sieve-b200-hbm3e-pim", num_gpus=1)
layer = sample_layers(model, system, batch=64, num_layers=1, seed=2)[0]
run = run_layer(layer, "sieve")
result = replay(run.result.schedule, run.dag, system, instance=layer)
print(f"predicted {run.makespan_ns / 1e3:.1f} us, replayed {result.makespan_ns / 1e3:.1f} us")
for kind, err in sorted(result.kind_error.items()):
    print(f"  {kind:9s} median |error| {err.median_abs_pct:6.1f}%  (mean signed {err.mean_signed_pct:+.1f}%: < 0 = optimistic, docs/metrics.md)")
