"""One Prefect deployment per client config (`kpdeliver deploy CLIENTS_DIR`), and the flow they run.

A deployment is named `<client>-<dataset>`, passes the config's path as its only parameter, runs on
a `process` work pool (created when missing) and carries the config's `schedule:` as a cron
schedule, or none. Registering again updates the same deployments: the server upserts by flow and
name, schedules included. `kpdeliver deploy` registers only configs that pass the full check, and
the flow checks its config again before it reads anything, so a run whose config broke since fails
in one message (its Failed state's), not 50 s later; a run's final state, artifact and last log line
say what it did (flows.outcome).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger

from flows.delivery import delivery_run, run_name
from flows.outcome import Subject, reports_outcome
from kpdeliver.clients.check import check_config
from kpdeliver.config import ClientConfig
from kpdeliver.progress import LogProgress, reporting
from kpdeliver.release.result import DeliveryResult
from tasks.store import store_failures_fail_the_run

FLOW_NAME = "deliver-client"
ENTRYPOINT = "flows/deployments.py:deliver_client"
DEFAULT_POOL = "kpdeliver-process"
REPO_ROOT = Path(__file__).resolve().parent.parent  # the folder a worker runs the entrypoint from


def _subject(config_path: str) -> Subject:
    """Whose delivery the config at `config_path` is, as far as it can be read."""
    import yaml

    path = Path(config_path)
    try:
        doc = yaml.safe_load(path.read_text())
        return Subject(str(doc["client"]), str(doc["dataset"]))
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return Subject("unreadable-config", path.stem or "unknown")


def _run_name_from_path() -> str:
    from prefect.runtime import flow_run

    subject = _subject(flow_run.parameters.get("config_path", ""))
    return run_name(subject.client, subject.dataset)


@flow(name=FLOW_NAME, flow_run_name=_run_name_from_path)
@reports_outcome(_subject)
@store_failures_fail_the_run
def deliver_client(config_path: str) -> DeliveryResult:
    """The deployments' entry point: check the client config completely, then deliver."""
    log = get_run_logger()
    check = check_config(config_path)
    for warning in check.warnings:
        log.warning(warning)
    config = check.config_or_raise()
    with reporting(LogProgress(log, every=30)):  # stage counts and rates in the run's log
        return delivery_run(config)


@dataclass(frozen=True)
class Registered:
    name: str  # '<flow>/<deployment>', what `prefect deployment run` takes
    config: str
    schedule: str | None


def deployment_name(config: ClientConfig) -> str:
    return f"{config.client}-{config.dataset}"


def client_configs(clients_dir: str | Path) -> list[Path]:
    """The YAML files in `clients_dir` that declare a client (other YAML is not a client config)."""
    import yaml

    found = []
    for p in sorted(Path(clients_dir).glob("*.y*ml")):
        try:
            doc = yaml.safe_load(p.read_text())
        except (OSError, yaml.YAMLError):
            doc = {"client": None}  # broken: still a config the operator meant, so checked and reported
        if isinstance(doc, dict) and "client" in doc:
            found.append(p.resolve())
    return found


def ensure_work_pool(client, pool: str) -> bool:
    """Create the `process` work pool `pool` unless it exists; True when it was created."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    try:
        client.read_work_pool(pool)
        return False
    except ObjectNotFound:
        pass
    try:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    except ObjectAlreadyExists:  # a twin registration created it meanwhile
        return False
    return True


def register(
    configs: list[tuple[Path, ClientConfig]], *, pool: str = DEFAULT_POOL, root: str | Path = REPO_ROOT
) -> tuple[list[Registered], bool]:
    """Create or update one deployment per (path, config) on the Prefect API in PREFECT_API_URL;
    the deployments and whether the work pool was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule

    root = str(Path(root).resolve())
    done = []
    with get_client(sync_client=True) as client:
        created = ensure_work_pool(client, pool)
        flow_id = client.create_flow(deliver_client)  # an upsert by name
        for path, config in configs:
            schedules = []
            if config.schedule is not None:
                schedules = [
                    DeploymentScheduleCreate(
                        schedule=CronSchedule(cron=config.schedule.cron, timezone=config.schedule.timezone),
                        active=True,
                    )
                ]
            name = deployment_name(config)
            client.create_deployment(
                flow_id=flow_id,
                name=name,
                entrypoint=ENTRYPOINT,
                path=root,
                work_pool_name=pool,
                parameters={"config_path": str(path)},
                schedules=schedules,
                tags=[f"client:{config.client}"],
                description=f"Delivery of {config.client}/{config.dataset} from {path}",
                pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": root}}],
            )
            cron = f"{config.schedule.cron} ({config.schedule.timezone})" if config.schedule else None
            done.append(Registered(f"{FLOW_NAME}/{name}", str(path), cron))
    return done, created
