"""The controller's side of the review agents (see review_agent.py): ensure, request, collect, withdraw.

The pass reads the run's result ConfigMap (`observe.review_results`); from it,
`collect` takes a new verdict of the agent and `request` writes the run's
request only when it changed. The agent's Deployment is created (or the run
added as one of its owners) once per run and controller start. `withdraw` takes
the request back before a finalize or discard. The controller never waits on
the agent: a verdict shows up on a later pass.
"""

from __future__ import annotations

from contract.review_agent import REQUEST_KEY, VERDICT_KEY, request_id
from controller.api import AutoLabelRun
from controller.kube import Kube
from controller.names import result_config_map_name
from controller.review import ReviewOutcome
from controller.review_agent import agent_deployment, agent_name, agent_owner, parse_verdict, review_request


class ReviewAgents:
    """Per-run memory of what was asked and what was applied, so nothing is written twice."""

    def __init__(self, kube: Kube, image: str, service_account: str, command: list[str]) -> None:
        self.kube = kube
        self.image = image
        self.service_account = service_account
        self.command = command
        self._owners: set[tuple[str, str, str]] = set()  # (namespace, agent, run uid) made owner
        self._requested: dict[str, str] = {}  # run uid -> request text written
        self._applied: dict[str, str] = {}  # run uid -> computedAt of the verdict applied last

    async def _ensure_agent(self, run: AutoLabelRun) -> None:
        namespace, name, uid = run.metadata["namespace"], agent_name(run.spec), run.metadata["uid"]
        if (namespace, name, uid) in self._owners:
            return
        manifest = agent_deployment(
            run.metadata,
            run.spec,
            image=self.image,
            service_account=self.service_account,
            command=self.command,
        )
        if not await self.kube.create(manifest):
            # Strategic merge: ownerReferences merge by uid, so this adds the run beside the others.
            await self.kube.patch_deployment(
                namespace, name, {"metadata": {"ownerReferences": [agent_owner(run.metadata)]}}
            )
        self._owners.add((namespace, name, uid))

    async def request(self, run: AutoLabelRun, data: dict[str, str]) -> None:
        """Makes sure the run's agent runs and has the run's current request (`data`: the result map)."""
        await self._ensure_agent(run)
        uid, raw = run.metadata["uid"], review_request(run.metadata, run.spec)
        if self._requested.get(uid) == raw or data.get(REQUEST_KEY) == raw:
            self._requested[uid] = raw
            return
        await self.kube.patch_config_map(
            run.metadata["namespace"], result_config_map_name(run.metadata), {"data": {REQUEST_KEY: raw}}
        )
        self._requested[uid] = raw

    def collect(self, run: AutoLabelRun, data: dict[str, str]) -> ReviewOutcome | None:
        """The agent's verdict for the current request, once (None when there is no new one)."""
        uid = run.metadata["uid"]
        current = request_id(review_request(run.metadata, run.spec))
        parsed = parse_verdict(data.get(VERDICT_KEY), current)
        if parsed is None or self._applied.get(uid) == parsed[0]:
            return None
        self._applied[uid] = parsed[0]
        return parsed[1]

    async def withdraw(self, run: AutoLabelRun, data: dict[str, str]) -> None:
        """Stops the agent serving the run (before finalize or discard touch the same labels)."""
        uid = run.metadata["uid"]
        self._requested.pop(uid, None)
        if REQUEST_KEY in data:
            await self.kube.patch_config_map(
                run.metadata["namespace"], result_config_map_name(run.metadata), {"data": {REQUEST_KEY: None}}
            )

    def forget(self, uid: str) -> None:
        self._requested.pop(uid, None)
        self._applied.pop(uid, None)
        self._owners = {owner for owner in self._owners if owner[2] != uid}
