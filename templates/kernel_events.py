"""The filter events of a report's kernel, collected by the runner for the audit log.

In JupyterLab the user's Jupyter server takes each kernel's filter events (``enclave_event``
messages on IOPub: the rule and the table's shape, never a value) to the hub. A report run has
no server between the runner and its kernel, so the runner does the same: papermill executes
the template with the ``enclave-audited`` engine, whose notebook client takes those messages
aside (parsed by the server's own ``output_filters.server.events.filter_event``) instead of
dropping them as unknown outputs. The kernel still writes no database and no file.

Each event is then tagged with the run it came from (``report_run``, ``template``,
``institution``: the runner's, replacing whatever the kernel put there) and handed to a sink:

- ``enclave report run|batch`` records them in the audit log under the command's user
  (``hub.cli.reports``, through ``hub.kernel_events``, the hub's own filter);
- a run started from a report author's own secure kernel (``templates.batch.run_batch`` in
  JupyterLab) sends them on from that kernel (``kernels.events.record``), so they reach the
  hub through the author's server like any other event of that kernel, under the author's name;
- any other caller finds them in the run's result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines

from kernels import events as kernel_events
from output_filters.server.events import filter_event

ENGINE = "enclave-audited"
RUN_DETAILS = ("report_run", "template", "institution")  # the runner's to set, never the kernel's
DROPPED = (*RUN_DETAILS, "event")  # "event" is the event's name, not a detail

EventSink = Callable[[Sequence[dict]], None]


class CollectingClient(PapermillNotebookClient):
    """papermill's notebook client, keeping the kernel's filter events in ``collected``."""

    def __init__(self, nb_man: Any, *, collected: list[dict], **kwargs: Any) -> None:
        super().__init__(nb_man, **kwargs)
        self.collected = collected

    def process_message(self, msg: dict, cell: Any, cell_index: int) -> Any:
        event = filter_event(msg)
        if event is not None:
            self.collected.append(event)
            return None  # for the audit, not an output of the notebook
        return super().process_message(msg, cell, cell_index)


class CollectingEngine(NBClientEngine):
    """papermill's nbclient engine with ``CollectingClient``; takes ``collected=[]``."""

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: Any,
        kernel_name: str,
        collected: list[dict] | None = None,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: int = 60,
        execution_timeout: int | None = None,
        input_path: str | None = None,
        **kwargs: Any,
    ) -> Any:
        timeout = kwargs.pop("timeout", None)
        kwargs.pop("startup_timeout", None)  # papermill's name for it is start_timeout
        client = CollectingClient(
            nb_man,
            collected=[] if collected is None else collected,
            kernel_name=kernel_name,
            startup_timeout=start_timeout,
            timeout=execution_timeout or timeout,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
            **kwargs,
        )
        return client.execute()


papermill_engines.register(ENGINE, CollectingEngine)


def tagged(collected: Sequence[dict], run: str, template: str, institution: str) -> tuple[dict, ...]:
    """The events of one run, each naming the run; the kernel cannot set these details."""
    context = {"report_run": run, "template": template, "institution": institution}
    out = []
    for item in collected:
        details = {k: v for k, v in (item.get("details") or {}).items() if k not in DROPPED}
        out.append({"event": item["event"], "details": {**details, **context}})
    return tuple(out)


def forward_from_kernel(collected: Sequence[dict]) -> None:
    """The default sink: in a secure kernel, send the events on as that kernel's own filter
    events (on its IOPub: the author's server takes them to the hub, under the author's name).

    Outside a kernel (``enclave report``, which passes its own sink; a benchmark, a test) the
    events stay in the run's result (``ReportResult.events``, ``Outcome.events``) for the caller:
    accounts have no way to run code outside a kernel but the ``enclave`` command."""
    if not kernel_events.in_kernel():
        return
    for item in collected:
        kernel_events.record(item["event"], **item["details"])
