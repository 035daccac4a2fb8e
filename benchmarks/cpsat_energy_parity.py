"""Did a change to ``solvers/cpsat_energy.py`` keep the CP-SAT model and its results identical?

Loads the file as it was at ``--old`` (``git show REV:solvers/cpsat_energy.py``) beside the current
one and solves the same (instance, policy hint, latency limit) pairs with both: prints whether
the model protos handed to CP-SAT and the results (status, makespan, energy, bound, modes,
starts) are identical. Used for the shared interval model (``solvers/_interval_model.py``):

    .venv/bin/python benchmarks/cpsat_energy_parity.py --old 6b2a5d3
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import tempfile
from pathlib import Path

from ortools.sat.python import cp_model

CONFIGS = (("qwen3-30b-a3b", 1, 16), ("gpt-oss-120b", 4, 16), ("gpt-oss-120b", 4, 64))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True, help="git revision of the reference solvers/cpsat_energy.py")
    a = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(["git", "show", f"{a.old}:solvers/cpsat_energy.py"], cwd=root, check=True,
                         capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "old_cpsat_energy.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location("old_cpsat_energy", path)
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
    from sieveopt.instance import sample_layers
    from sieveopt.models.catalog import load_model, load_system
    from sieveopt.pipeline import build_dag, run_layer
    from sieveopt.solvers import cpsat_energy as new
    from sieveopt.validation.energy.layer import energy_model_for

    protos: list[str] = []
    orig = cp_model.CpSolver.solve

    def capture(self, model, *args, **kw):
        protos.append(str(model.Proto()))
        return orig(self, model, *args, **kw)

    cp_model.CpSolver.solve = capture
    n_same = n = 0
    for name, g, b in CONFIGS:
        model, system = load_model(name), load_system("sieve-b200-hbm3e-pim", g)
        em = energy_model_for(system, model)
        inst = sample_layers(model, system, b, 1, 0)[0]
        dag, cost = build_dag(inst)
        for pol in ("sieve", "duplex", "pimoe"):
            r = run_layer(inst, pol, dag=dag, cost=cost)
            sch = r.result.schedule
            for lim in (int(sch.makespan_ns), int(sch.makespan_ns * 1.3)):
                protos.clear()
                x = old.solve_cpsat_energy(r.dag, em, latency_limit_ns=lim, time_limit_s=1.0, hints=[sch])
                y = new.solve_cpsat_energy(r.dag, em, latency_limit_ns=lim, time_limit_s=1.0, hints=[sch])
                same = (protos[0] == protos[1] and x.status == y.status and x.makespan_ns == y.makespan_ns
                        and x.meta["energy_J"] == y.meta["energy_J"] and x.meta["bound_J"] == y.meta["bound_J"]
                        and list(x.schedule.modes) == list(y.schedule.modes)
                        and (x.schedule.start_ns == y.schedule.start_ns).all())
                n += 1
                n_same += same
                print(f"{name} x{g} B={b} {pol} limit {lim} ns: {'identical' if same else 'DIFFERENT'} ({y.status})")
    print(f"{n_same}/{n} identical")
    raise SystemExit(0 if n_same == n else 1)


if __name__ == "__main__":
    main()
