"""The design-space exploration as Optuna studies, so that any number of workers on any number of machines share it.

A study lives in a storage every worker opens: a journal file in OUT by default (one machine, no server), or
PostgreSQL / MySQL through SQLAlchemy (`postgresql://user@host/db`) for many. Why Optuna and not Ray Tune: a study
is rows in a database that any process can join, so a worker is one command (`squeezenet explore --worker`)
started by hand, by a Slurm job array or by anything else, with no cluster to stand up; enqueued trials give the
paper's sweeps their exact configurations; multi-objective samplers and Pareto fronts are built in. Ray Tune needs
a Ray cluster (a head node, ~200 MB) and its ASHA scheduler is single-objective.

Every trial is an ordinary `squeezenet train` run in RUNS/<configuration>/ (`explore.Trial`): a configuration
under two trials (a retry after a crash) is the same folder, resumed from its checkpoint, or reused if finished,
so each configuration is trained once. A worker killed mid-trial: on a database, Optuna's heartbeat (every
HEARTBEAT s, stale after three missed) fails the trial and RetryHeartbeatStaleTrialCallback enqueues it again for the
next worker. A journal has no heartbeat: each trial records its worker's host and process, and a worker on that host
fails and re-enqueues the trials of workers that no longer exist (the journal is for one machine).
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from pathlib import Path

from squeezenet.data.folders import dataset
from squeezenet.errors import SqueezeNetError
from squeezenet.experiments import explore
from squeezenet.experiments.device import OBJECTIVES, costs, excluded

HEARTBEAT = 20  # seconds; a trial is stale after three missed
POLL = 5  # seconds between looks at a study whose last trials run elsewhere
JOURNAL = "study.journal"
INVALID = "not a valid configuration"  # sampled, but the family cannot build it
MISSES = 2_000  # sampled configurations excluded in a row before a search gives up (each costs ~0.1 s)


def storage(url: str | None, out: str | Path, heartbeat: int = HEARTBEAT):
    """The storage of `url` (a database URL, or a journal file path), by default OUT/study.journal; a database's
    trials beat every `heartbeat` seconds and are stale after three missed."""
    import optuna
    from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # the heartbeat's
    if url is not None and url.startswith("sqlite"):
        raise SqueezeNetError(f"--storage {url}: SQLite locks under parallel workers; use a journal file path (one "
                              f"machine) or postgresql://... (many)")
    if url is None or "://" not in url:
        path = Path(url) if url else Path(out) / JOURNAL
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    try:
        return RDBStorage(url, engine_kwargs={"connect_args": {"connect_timeout": 10}}
                          if url.startswith("postgresql") else None, heartbeat_interval=heartbeat,
                          grace_period=3 * heartbeat,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=None))
    except (ImportError, ModuleNotFoundError) as e:
        raise SqueezeNetError(f"--storage {_safe(url)}: {e} (pip install 'squeezenet[postgres]' for PostgreSQL)") \
            from None
    except Exception as e:  # SQLAlchemy's errors: a server that does not answer, a wrong password or database
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise SqueezeNetError(f"cannot open the study storage {_safe(url)}: {reason}") from None


def _safe(url: str) -> str:
    """The URL without its password."""
    head, sep, tail = url.partition("://")
    user, at, host = tail.rpartition("@")
    return f"{head}{sep}{user.split(':')[0]}{at}{host}" if at else url


def open_study(store, name: str, space: dict | None, seed: int = 0):
    """The study `name` (created with `space` if new). Joining one of another space is a one-line error; with
    `space` None (a worker) the study must exist, and its space is returned with it."""
    import optuna

    names = [s.study_name for s in optuna.get_all_study_summaries(store)]
    if space is None and name not in names:
        raise SqueezeNetError(f"no study {name!r} in this storage (studies: {', '.join(names) or 'none'})")
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, multivariate=True)
    study = optuna.create_study(storage=store, study_name=name, directions=["maximize", "minimize"],
                                sampler=sampler, load_if_exists=True)
    stored = study.user_attrs.get("space")
    if stored is None:
        if space is None:
            raise SqueezeNetError(f"study {name!r} was not made by squeezenet explore")
        study.set_user_attr("space", space)
        return study, space
    if space is not None and stored != json.loads(json.dumps(space)):
        raise SqueezeNetError(f"study {name!r} explores another space: {_difference(stored, space)}; choose "
                              f"another --study")
    return study, stored


def _difference(old: dict, new: dict) -> str:
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != json.loads(json.dumps(new.get(k)))]
    return ", ".join(f"{k} {old.get(k)!r} (asked: {new.get(k)!r})" for k in keys[:2])


def enqueue(study, configurations: list[dict]) -> None:
    """Each configuration once (an existing one, from an earlier command, is not enqueued again)."""
    for params in configurations:
        study.enqueue_trial(params, skip_if_exists=True)


def _alive(worker: str) -> bool:
    """False only for a process of this host that is gone or a zombie (other hosts cannot be asked)."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # killed, not yet reaped by its parent
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def recover(study) -> list[int]:
    """Fail the trials of dead workers and enqueue their configurations again; the numbers of those failed."""
    import optuna
    from optuna.trial import TrialState

    if isinstance(study._storage, optuna.storages.RDBStorage):
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        optuna.storages.fail_stale_trials(study)
        return sorted({t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))} - before)
    dead = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if not _alive(t.user_attrs.get("worker", ""))]
    for t in dead:
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
    return [t.number for t in dead]


def _configuration(study, trial, space: dict) -> tuple[str, dict, int | None]:
    """(model, overrides, input size) of a trial: a sweep's enqueued values, or a search's sample."""
    if space["kind"] == "search":
        return _space_of(space).sample(trial)
    choices: dict[str, list] = {}  # one distribution per name in a study: every value the sweep gives it
    for c in space["configurations"]:
        for k, v in c.items():
            choices.setdefault(k, []).extend([] if v in choices.get(k, []) else [v])
    params = {k: trial.suggest_categorical(k, choices[k]) for k in _fixed(study, trial)}
    return params.pop("model"), params, None


def work(study, space: dict, data: str | Path, runs: str | Path, threads: int, trials: int | None = None,
         log=print) -> int:
    """Take the study's next configurations until it is done (a sweep: none waiting; a search: its number of
    trials trained, those excluded before training not counted) or `trials` were trained; returns how many this
    worker trained."""
    from optuna.trial import TrialState

    classes, trained, missed = _classes(data), 0, 0
    while trials is None or trained < trials:
        if missed >= MISSES:
            raise SqueezeNetError(f"{missed:,} sampled configurations in a row were over the limits: narrow the "
                                  f"ranges (--base-e, --incr-e, --sr, ...) toward the configurations that fit")
        for n in recover(study):
            log(f"trial {n}: its worker died; enqueued again")
        all_ = study.get_trials(deepcopy=False)
        waiting = any(t.state == TrialState.WAITING for t in all_)
        running = sum(t.state == TrialState.RUNNING for t in all_)
        counted = sum(t.state == TrialState.COMPLETE for t in all_)  # an excluded configuration costs nothing
        if not waiting and (space["kind"] == "sweep" or counted + running >= space["trials"]):
            if not running:
                break
            time.sleep(POLL)  # the running trials finish, or their workers died and they come back
            continue
        trial = study.ask()
        if space["kind"] == "sweep" and not _fixed(study, trial):
            study.tell(trial, state=TrialState.FAIL)  # another worker took the last configuration
            continue
        done = _one(study, trial, space, data, Path(runs), threads, classes, log)
        trained, missed = trained + done, 0 if done or _fixed(study, trial) else missed + 1
    return trained


def _fixed(study, trial) -> dict:
    """The parameters an enqueued trial was given ({} for a sampled one)."""
    return study._storage.get_trial(trial._trial_id).system_attrs.get("fixed_params", {})


def _classes(data: str | Path) -> int:
    return sum(1 for p in (dataset(data) / "train").iterdir() if p.is_dir())


def _one(study, trial, space: dict, data, runs: Path, threads: int, classes: int, log) -> int:
    """One trial: its costs, excluded before training if over a limit, else trained (or resumed) and told."""
    from optuna.storages._heartbeat import get_heartbeat_thread
    from optuna.trial import TrialState

    model, over, size = _configuration(study, trial, space)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    try:
        t = explore.trial_of(model, over, runs, size)
        cost = costs(model, over, size or space["image_size"], classes)
    except SqueezeNetError as e:  # a sampled configuration the family cannot build (a zero-width layer)
        why, cost = f"{INVALID}: {e}", {}
    else:
        trial.set_user_attr("run_dir", str(t.run_dir))
        why = excluded(cost, space.get("limits", {}))
    for k, v in cost.items():
        trial.set_user_attr(k, v)
    if why:
        trial.set_user_attr("excluded", why)
        study.tell(trial, state=TrialState.PRUNED)
        log(f"trial {trial.number}: excluded before training ({why})")
        return 0
    try:
        with get_heartbeat_thread(trial._trial_id, study._storage):
            r = explore.train_trial(t, data, space["train_args"], threads, space.get("compress", False))
    except SqueezeNetError:  # a finished run trained otherwise, a run folder that stays locked
        study.tell(trial, state=TrialState.FAIL)
        raise
    if not r["ok"]:
        study.tell(trial, state=TrialState.FAIL)
        raise SqueezeNetError(f"trial {trial.number} {t.name} failed (exit {r['returncode']}), see {r['log']}")
    row = explore.collect([t])[0]
    for k in ("top1", "top5", "train_seconds", "epochs"):
        trial.set_user_attr(k, row[k])
    study.tell(trial, [row["top1"], cost[space["objective"]]])
    log(f"trial {trial.number} {t.name}: top-1 {row['top1']:.2%}, {space['objective']} {cost[space['objective']]:,}")
    return 1


def rows(study) -> list[dict]:
    """One row per trial that finished or was excluded: configuration, costs, accuracy, state."""
    out = []
    for t in study.get_trials(deepcopy=False):
        if not t.state.is_finished() or t.state.name == "FAIL":
            continue
        a = t.user_attrs
        out.append({"trial": t.number, "state": t.state.name.lower(), **t.params,
                    **{k: a.get(k) for k in (*OBJECTIVES, "top1", "top5", "excluded", "run_dir")}})
    return out


def _space_of(space: dict):
    from squeezenet.experiments.device import Space

    return Space(**{k: tuple(v) if isinstance(v, list) else v for k, v in space["space"].items()})


def references(space: dict) -> list[dict]:
    return _space_of(space).references()


def check_limits(space: dict, data: str | Path) -> None:
    """A one-line error when not even the space's cheapest corner (every range at its low end, the most fire
    modules between increments, no bypass, the smallest size; base_e raised until the layers are not empty) meets
    the limits."""
    s, classes = _space_of(space), _classes(data)
    found = []
    for model in s.stems:
        for base in range(s.base_e[0], s.base_e[1] + 1, s.step):
            corner = {"base_e": base, "incr_e": s.incr_e[0], "freq": s.freq[1], "pct3x3": s.pct3x3[0],
                      "sr": s.sr[0], "bypass": "none"}
            try:
                found.append((excluded(costs(model, corner, min(s.sizes), classes), space["limits"]), model, corner))
                break
            except SqueezeNetError:  # a zero-width layer: a little wider
                continue
    if found and all(why for why, _, _ in found):
        why, model, corner = min(found, key=lambda x: x[0])
        flags = " ".join(f"--max-{k} {v:,}" for k, v in space["limits"].items())
        raise SqueezeNetError(f"no configuration of the search space meets {flags}: the cheapest, {model} with "
                              f"{corner} at {min(s.sizes)} px, has {why}")


def write_results(study, space: dict, out: str | Path, runs: str | Path, name: str) -> list[Path]:
    """A sweep's table and figure (`explore.write_results`) or a search's Pareto front (`pareto.write`), drawn
    from the study."""
    from optuna.trial import TrialState

    from squeezenet.experiments import pareto

    if space["kind"] == "search":
        return pareto.write(rows(study), out, space["objective"], f"search '{name}': top-1 against "
                                                                   f"{space['objective']}",
                            space.get("limits", {}).get(space["objective"]))
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    trials = [explore.trial_of(t.params["model"], {k: v for k, v in t.params.items() if k != "model"}, runs)
              for t in done]
    found = explore.collect([t for t in trials if t.done])
    if not found:
        return []
    return explore.write_results(found, out, f"{space['sweep']} sweep")
