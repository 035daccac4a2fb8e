"""Energy of one decode layer: replayed (counts from the DRAM/PIM simulator, replayed times)
and predicted (closed-form counts from the DAG's work, the cost model's times), by component.

Components (J, summed over the GPUs of the layer; their sum is the total):

* ``dram_background``: IDD3N while the GPU's stacks serve a stream or a PIM job (its busy
  interval), IDD2N otherwise, over the makespan, every pseudo-channel [assumption: an idle
  controller closes its rows; power-down is not modelled];
* ``dram_refresh``: makespan / tREFI all-bank REFs per pseudo-channel;
* ``dram_act_pre``, ``dram_rd_wr``, ``dram_io``, ``pim_mac``: command energies of the IDD
  method (:mod:`.idd`). Replayed counts: a GPU stream's ACT/RD per access from a simulated
  reference stream; a PIM job's ACTAB/MAC/GWR/RDRES from the very command program the
  simulator runs (every pseudo-channel). Predicted counts: ACT = bytes / page, RD = bytes /
  access; PIM: all-bank activations = weight bytes x tokens / (banks x page), MAC reads =
  weight bytes x tokens, token writes / read-backs = the DAG's activation bytes;
* ``gpu_compute``: FLOPs x pJ/FLOP + HBM bits through the caches x on-chip pJ/bit;
* ``gpu_static``: static power x makespan per GPU;
* ``nvlink``: message bits (+ packet headers in the replay) x pJ/bit.

Per token: ``J_per_token_layer`` = layer energy / batch; ``J_per_token`` scales it by the
model's MoE layers (every MoE layer like this one; dense layers not counted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from sieveopt.dag import ATTN, EXPERT, MESSAGE_KINDS, TaskDAG
from sieveopt.models.costmodel import MODE_GPU, MODE_PIM
from sieveopt.validation.energy.idd import DRAM_COMPONENTS, command_energy, energy_from_counts
from sieveopt.validation.energy.spec import dram_energy_spec, system_energy_spec

COMPONENTS = (*DRAM_COMPONENTS, "gpu_compute", "gpu_static", "nvlink")
#: |predicted - replayed| / replayed a component may show and still "match" (percent):
#: time-driven components follow the makespan error (replay design note: layer makespan errors
#: of the roofline up to ~30 %). Count-driven ones share one count definition on both sides
#: (PIM: :func:`pim_job_counts`; GPU stream: bytes / access), so only a mode that differs between
#: the predicted and the replayed schedule may move them: 1 %. ACT/PRE keeps 50 %: a GPU stream's
#: predicted ACT is bytes / page, its replayed ACT the simulated rate, equal only for the
#: row-major mappings the presets use.
TOLERANCE_PCT = {"dram_background": 35.0, "dram_refresh": 35.0, "gpu_static": 35.0,
                 "dram_act_pre": 50.0, "dram_rd_wr": 1.0, "dram_io": 1.0, "pim_mac": 1.0,
                 "gpu_compute": 1.0, "nvlink": 5.0, "total": 35.0}
#: reference stream length, in full sweeps of every bank's row (so partial rows do not skew the rate)
REF_STREAM_SWEEPS = 8


@lru_cache(maxsize=64)
def _stream_act_per_access(cfg) -> float:
    """ACTs per column access of a long sequential GPU stream, simulated (refresh off)."""
    import dataclasses

    from sieveopt.validation.dram.api import stream_requests
    from sieveopt.validation.dram.sim import DramSim

    c = dataclasses.replace(cfg, controller=dataclasses.replace(cfg.controller, refresh=False))
    sim = DramSim(c, channels=1, frontend_requests_per_cycle=0)
    r = stream_requests(c, REF_STREAM_SWEEPS * c.org.banks * c.org.columns)
    sim.feed(r["pch"], r["bg"], r["bank"], r["row"], r["col"], r["wr"])
    st = sim.finish()
    return st.commands.get("ACT", 0) / max(1, st.reads)


@lru_cache(maxsize=4096)
def _token_program_counts(cfg, matrices: tuple, bpe: float, act: float, n_pch: int) -> tuple:
    """Command counts of one token's pass of a PIM job's program sharded over ``n_pch``
    pseudo-channels, on one of them."""
    from sieveopt.validation.dram.pim import pim_program
    from sieveopt.validation.dram.timing import COMMANDS

    prog = pim_program(cfg, list(matrices), 1, bytes_per_element=bpe, pseudo_channels=n_pch, act_bytes=act)
    cnt = np.bincount(prog.cmd, minlength=len(COMMANDS))
    return tuple((COMMANDS[i], int(c)) for i, c in enumerate(cnt) if c)


def pim_job_counts(cfg, matrices: tuple, tokens: int, bpe: float, act: float,
                   pseudo_channels: int | None = None) -> dict[str, int]:
    """Commands a PIM job issues over every pseudo-channel of the GPU: the very program the
    simulator executes (tokens passes of :func:`~sieveopt.validation.dram.pim.pim_program`, every
    pCH running the same one). The one count definition of replay *and* prediction: it includes
    what the hardware does beyond the weight bytes, i.e. each token's input vector written to
    every pseudo-channel (GWR, plus the kernel's mode-switch writes), per-pCH partial-sum
    read-back (RDRES of max(rows per pCH, banks) results), and all-bank ACTAB/MAC over rows a
    pCH's shard fills only partly (a MAC fires every PU; ``ceil`` of rows and columns).
    ``pseudo_channels``: the job is sharded over that many (an expert-parallel PIM group,
    :mod:`sieveopt.pim_groups`) instead of all of them."""
    n_pch = pseudo_channels or cfg.org.pseudo_channels
    n = tokens * n_pch
    return {k: c * n for k, c in _token_program_counts(cfg, matrices, bpe, act, n_pch)}


@dataclass(frozen=True)
class _WorkTask:
    """A work item outside the DAG, shaped like a DAG task for :meth:`LayerEnergyModel.task_energy_pJ`."""

    kind: str
    work: Any
    tokens: int
    gpu: int


def _busy_ns(intervals: list[tuple[float, float]]) -> float:
    tot, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                tot += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        tot += cur_e - cur_s
    return tot


class LayerEnergyModel:
    """Energy data of a (system, DRAM config) pair; ``unavailable`` says why when absent."""

    def __init__(self, system, model, cfg, dram_preset: str, timer: Any = None) -> None:
        self.system, self.model, self.cfg, self.timer = system, model, cfg, timer
        self.dram_spec = dram_energy_spec(dram_preset)
        self.sys_spec = system_energy_spec(system.name)
        missing = []
        if self.dram_spec is None:
            missing.append(f"DRAM preset {dram_preset!r} has no energy file")
        if self.sys_spec is None:
            missing.append(f"system {system.name!r} has no energy file")
        self.unavailable = "; ".join(missing) or None
        self.dram_preset = dram_preset
        if self.unavailable is None:
            self.ce = command_energy(cfg, self.dram_spec)

    # -- counts -------------------------------------------------------------------------------
    def _stream_counts(self, nbytes: float, simulated: bool) -> dict[str, float]:
        acc = nbytes / self.cfg.org.access_bytes
        act = acc * _stream_act_per_access(self.cfg) if simulated else nbytes / self.cfg.org.page_bytes
        return {"RD": acc, "ACT": act}

    def _pim_counts(self, t, dag: TaskDAG | None = None) -> tuple[dict[str, float], float]:
        """(counts, bytes one MAC reads per PU) of a PIM-mode task (:func:`pim_job_counts`);
        an expert of an expert-parallel PIM DAG runs on its channel group only (as in replay)."""
        cfg, w, m = self.cfg, t.work, self.model
        n_pch = None
        if t.kind == EXPERT:
            bpe, act = float(m.expert_weight_bytes_per_param), float(m.activation_bytes)
            from sieveopt.validation.dram.pim import expert_matrices

            mats: tuple = tuple(tuple(x) for x in expert_matrices(m.hidden_size, m.expert_intermediate_size))
            tokens = int(t.tokens)
            if dag is not None and self.timer is not None:
                from sieveopt.pim_groups import task_group

                grp = task_group(dag, t.tid)
                n_pch = None if grp is None else self.timer.pim_pseudo_channels_on(grp[1])
        else:
            act = bpe = float(m.activation_bytes)
            rows, cols, _, passes = self.timer._attention_shape(w.kv_bytes, w.flops)
            mats, tokens = ((rows, cols),), passes
        return dict(pim_job_counts(cfg, mats, tokens, bpe, act, n_pch)), cfg.pim.mac_bytes(bpe)

    # -- energy ---------------------------------------------------------------------------------
    def task_energy_pJ(self, t, mode: str, *, simulated: bool, link_params: Any = None,
                       counts_out: dict[str, float] | None = None, dag: TaskDAG | None = None) -> dict[str, float]:
        """Mode-dependent energy of one task (pJ by component): its DRAM/PIM commands, GPU
        compute or NVLink bits. Time-dependent energy (background, refresh, static) is not in it.
        ``dag`` (the task's) places an expert-parallel PIM expert on its channel group.
        ``counts_out`` accumulates the DRAM/PIM command counts and NVLink egress bits
        (``nvlink_bits[g]``) behind it."""
        ce, spec, w = self.ce, self.sys_spec, t.work
        pj = dict.fromkeys(COMPONENTS, 0.0)
        counts: dict[str, float] = {}
        if t.kind in MESSAGE_KINDS:
            nbytes = w.msg_bytes
            if simulated and link_params is not None and link_params.header_bytes:
                nbytes += math.ceil(nbytes / link_params.packet_bytes) * link_params.header_bytes
            pj["nvlink"] = nbytes * 8 * spec["link.pJ_per_bit"]
            counts[f"nvlink_bits[{t.gpu}]"] = nbytes * 8
        elif mode == MODE_GPU:
            nbytes = w.weight_bytes + w.act_bytes + w.kv_bytes
            pj["gpu_compute"] = w.flops * spec["gpu.flop_pJ"] + nbytes * 8 * spec["gpu.onchip_pJ_per_bit"]
            if nbytes > 0:
                counts = self._stream_counts(nbytes, simulated)
                pj.update(energy_from_counts(ce, counts, active_ns=0.0, precharged_ns=0.0))
        elif mode == MODE_PIM and t.kind in (EXPERT, ATTN):
            counts, mac_b = self._pim_counts(t, dag)
            pj.update(energy_from_counts(ce, counts, active_ns=0.0, precharged_ns=0.0,
                                         mac_bytes=mac_b, pim_ops=w.flops))
            counts = {**counts, "PIM_OPS": w.flops}
        if counts_out is not None:
            for k, v in counts.items():
                counts_out[k] = counts_out.get(k, 0.0) + float(v)
        return pj

    def work_energy_pJ(self, work, mode: str = MODE_GPU, gpu: int = 0, *, simulated: bool = False) -> dict[str, float]:
        """Mode-dependent energy (pJ by component) of work outside the MoE layer DAG (LM head,
        embedding, dense-layer projections / attention / FFN): the same definition as a DAG
        task's (:meth:`task_energy_pJ`); ``simulated``: a GPU stream's ACTs at the simulated rate
        (replay) instead of bytes / page (prediction)."""
        return self.task_energy_pJ(_WorkTask(work.kind, work, work.tokens, gpu), mode, simulated=simulated)

    def busy_pJ_per_ns(self, num_gpus: int) -> float:
        """Power of ``num_gpus`` GPUs whose stacks all serve a task: :meth:`constant_pJ_per_ns`
        plus the open-row power (the time-driven energy of serial GPU work outside the DAG)."""
        return self.constant_pJ_per_ns(num_gpus) + num_gpus * self.open_row_pJ_per_ns()

    def busy_components_pJ(self, num_gpus: int, ns: float) -> dict[str, float]:
        """:meth:`busy_pJ_per_ns` x ``ns`` split by component: GPU static power, the stacks'
        background with every pseudo-channel open (IDD3N) and refresh."""
        ce, cfg = self.ce, self.cfg
        pch_ns = num_gpus * cfg.org.pseudo_channels * ns
        return {"gpu_static": num_gpus * self.sys_spec["gpu.static_W"] * 1e3 * ns,
                "dram_background": ce.active_standby_mW * pch_ns,
                "dram_refresh": pch_ns / (cfg.timing.nREFI * cfg.tCK_ns) * ce.ref_pJ}

    @staticmethod
    def uses_dram(t, mode: str) -> bool:
        w = t.work
        if t.kind in MESSAGE_KINDS:
            return False
        if mode == MODE_GPU:
            return w.weight_bytes + w.act_bytes + w.kv_bytes > 0
        return mode == MODE_PIM and t.kind in (EXPERT, ATTN)

    def open_row_pJ_per_ns(self) -> float:
        """Extra background power of one GPU's stacks while they serve a task (all pCH open)."""
        return (self.ce.active_standby_mW - self.ce.precharge_standby_mW) * self.cfg.org.pseudo_channels

    def constant_pJ_per_ns(self, num_gpus: int) -> float:
        """Energy per ns of makespan that no decision changes: GPU static power, precharge
        standby and refresh of every pseudo-channel."""
        ce, cfg = self.ce, self.cfg
        per_pch = ce.precharge_standby_mW + ce.ref_pJ / (cfg.timing.nREFI * cfg.tCK_ns)
        return num_gpus * (self.sys_spec["gpu.static_W"] * 1e3 + cfg.org.pseudo_channels * per_pch)

    def energy(self, dag: TaskDAG, modes, start_ns, end_ns, makespan_ns: float, *,
               simulated: bool, link_params: Any = None, residency: str = "union",
               counts_out: dict[str, float] | None = None) -> dict[str, float]:
        """Components in joules for the given timeline (see module docstring). ``residency``
        "union": the stacks of a GPU are open while any of its DRAM tasks runs (replay);
        "sum": every DRAM task pays the open-row power for its own duration (the cost-model
        energy CP-SAT optimises: linear in the decisions; overlapping tasks both pay)."""
        ce, cfg = self.ce, self.cfg
        n_pch = cfg.org.pseudo_channels
        pj = dict.fromkeys(COMPONENTS, 0.0)
        busy: dict[int, list[tuple[float, float]]] = {}
        summed = 0.0
        for t in dag.tasks:
            mode = modes[t.tid]
            for k, v in self.task_energy_pJ(t, mode, simulated=simulated, link_params=link_params,
                                            counts_out=counts_out, dag=dag).items():
                pj[k] += v
            if self.uses_dram(t, mode):
                s, e = float(start_ns[t.tid]), float(end_ns[t.tid])
                busy.setdefault(t.gpu, []).append((s, e))
                summed += e - s
        g = dag.num_gpus
        active = (summed if residency == "sum" else sum(_busy_ns(v) for v in busy.values())) * n_pch
        pj["dram_background"] += (ce.active_standby_mW * active
                                  + ce.precharge_standby_mW * (g * n_pch * makespan_ns - active))
        refs = g * n_pch * makespan_ns / (cfg.timing.nREFI * cfg.tCK_ns)
        pj["dram_refresh"] += refs * ce.ref_pJ
        if counts_out is not None:
            counts_out["REF"] = counts_out.get("REF", 0.0) + refs
            counts_out["bank_open_pch_ns"] = active
            counts_out["all_precharged_pch_ns"] = g * n_pch * makespan_ns - active
        pj["gpu_static"] += g * self.sys_spec["gpu.static_W"] * makespan_ns * 1e3   # W x ns = 1e3 pJ
        return {k: v * 1e-12 for k, v in pj.items()}


def energy_model_for(system: Any, model: Any, dram_preset: str | None = None,
                     **overrides: Any) -> LayerEnergyModel:
    """The energy model of ``system`` running ``model`` with the DRAM preset (and overrides)
    replay uses for it (the system's one DRAM description, :func:`sieveopt.models.dram.resolve_dram`,
    plus ``dram_preset`` / ``overrides`` experiments on top, as :class:`DramTimer` takes them)."""
    from sieveopt.errors import SieveoptError
    from sieveopt.validation.replay_dram import DramTimer

    try:
        timer = DramTimer(system, model, preset=dram_preset, **overrides)
    except SieveoptError as exc:   # no DRAM preset for this system: no energy, say why
        return NoEnergy(f"no DRAM preset for system {system.name!r} ({exc})")
    return LayerEnergyModel(system, model, timer.cfg, timer.preset, timer=timer)


class NoEnergy:
    """Stands in for :class:`LayerEnergyModel` when a system cannot have one."""

    def __init__(self, reason: str) -> None:
        self.unavailable = reason


def _err(pred: float, rep: float) -> float | None:
    return None if rep == 0 else 100.0 * (pred - rep) / rep


def replay_energy_block(rep: Any, dag: TaskDAG, system: Any, instance: Any = None) -> dict[str, Any]:
    """The ``energy`` block of ``sieveopt replay --json``: replayed and predicted joules per
    component, their totals, per token, the per-component error and whether it is within
    :data:`TOLERANCE_PCT`; or ``{"available": false, "reason": ...}``."""
    from sieveopt.validation.replay import _model_of
    from sieveopt.validation.replay_net import link_params

    model = _model_of(dag, instance)
    d = rep.meta.get("dram")
    if d is not None:   # the preset and overrides the replay ran (re-applying them is idempotent)
        preset, ov = d["preset"], dict(d["overrides"])
        counts = "simulated"
    else:
        preset, ov = None, {}
        counts = "closed-form (memory=analytic: no DRAM simulator run)"
    model_em = energy_model_for(system, model, preset, **ov)
    if model_em.unavailable:
        return {"available": False, "reason": f"energy unavailable: {model_em.unavailable}"}
    lp = link_params(system, dag.num_gpus) if any(t.kind in MESSAGE_KINDS for t in dag.tasks) else None
    rs, ps = rep.schedule, rep.predicted
    c_rep: dict[str, float] = {}
    c_pred: dict[str, float] = {}
    replayed = model_em.energy(dag, rs.modes, rs.start_ns, rs.end_ns, rep.makespan_ns,
                               simulated=d is not None, link_params=lp, counts_out=c_rep)
    predicted = model_em.energy(dag, ps.modes, ps.start_ns, ps.end_ns, rep.predicted_makespan_ns,
                                simulated=False, link_params=lp, residency="sum", counts_out=c_pred)
    batch = instance.batch if instance is not None else int(dag.meta.get("batch", 0)) or None
    tot_r, tot_p = sum(replayed.values()), sum(predicted.values())
    err = {k: _err(predicted[k], replayed[k]) for k in COMPONENTS}
    err["total"] = _err(tot_p, tot_r)
    ok = {k: (e is None or abs(e) <= TOLERANCE_PCT[k]) for k, e in err.items()}
    opens = sorted(f"{s.name}:{k}" for s in (model_em.dram_spec, model_em.sys_spec)
                   for k, v in s.values.items() if v.open)
    return {
        "available": True, "unit": "J", "dram_preset": preset, "counts": counts,
        "execution_model": "serialized layer (one batch, one MoE layer)",
        "precision": {"expert_weight_bytes_per_param": float(model.expert_weight_bytes_per_param),
                      "activation_bytes": float(model.activation_bytes)},
        "energy_model": "IDD method (validation/energy); predicted: closed-form counts of the DAG's work "
                        "and the cost model's times; replayed: simulator counts and replayed times",
        "replayed_J": replayed, "predicted_J": predicted,
        "replayed_total_J": tot_r, "predicted_total_J": tot_p,
        "J_per_layer": tot_r, "batch": batch,
        "J_per_token_layer": tot_r / batch if batch else None,
        "J_per_token": tot_r * model.num_moe_layers / batch if batch else None,
        "predicted_J_per_token": tot_p * model.num_moe_layers / batch if batch else None,
        "error_pct": err, "tolerance_pct": dict(TOLERANCE_PCT), "within_tolerance": ok,
        "activity": {"replayed": dict(sorted(c_rep.items())), "predicted": dict(sorted(c_pred.items())),
                     "note": "DRAM/PIM commands summed over every pseudo-channel of every GPU (REF "
                             "fractional: makespan / tREFI); NVLink egress bits per GPU; pCH-ns with a "
                             "bank open / all banks precharged"},
        "open_values": opens,
        "sources": {"dram": model_em.dram_spec.path, "system": model_em.sys_spec.path},
    }
