"""The whole skeleton through the real hub: login form, user server, secure kernel, filter."""

from __future__ import annotations

import os
import re
import time

import pyotp
import pytest

from tests.e2e.hub_client import HubClient

pytestmark = pytest.mark.e2e


def test_wrong_password_is_refused(hub):
    client = HubClient(hub.url)
    response = client.login("demo-researcher", "not-the-password")
    assert response.status_code == 403
    assert "Invalid username or password" in response.text


def test_the_kernel_runs_as_the_users_own_account_when_the_hub_is_root(hub):
    client, kernel_id = _researcher_kernel(hub)
    out = client.execute(
        "demo-researcher",
        kernel_id,
        "import os\ntry:\n    open(os.path.join(os.environ['ENCLAVE_VAR'], 'warehouse.db'), 'rb').read(1)\n"
        "    print('warehouse readable')\nexcept PermissionError:\n    print('warehouse refused')\n"
        "print('uid', os.getuid())",
    )
    assert out.reply["status"] == "ok", out.text
    if os.geteuid() == 0:  # as root the hub never runs a kernel as root: per-user accounts or no spawn
        assert "warehouse refused" in out.text and "uid 0" not in out.text
    else:  # a developer's machine, ENCLAVE_ISOLATION=off: one account for all
        assert "warehouse readable" in out.text


def test_researcher_runs_the_secure_kernel_and_the_filter_holds(hub):
    client = HubClient(hub.url)
    response = client.login("demo-researcher", hub.passwords["demo-researcher"])
    assert response.status_code == 302, response.text[:500]

    lab = client.open_lab("demo-researcher")
    assert "JupyterLab" in lab.text

    specs = client.api("demo-researcher", "GET", "kernelspecs").json()
    assert set(specs["kernelspecs"]) == {"enclave"}
    assert client.start_kernel("demo-researcher", "python3").status_code >= 400

    started = client.start_kernel("demo-researcher")
    assert started.status_code == 201, started.text
    kernel_id = started.json()["id"]
    assert started.json()["name"] == "enclave"

    load = client.execute(
        "demo-researcher",
        kernel_id,
        "import pandas as pd\nfrom kernels import data\n"
        "df = data.load('k12_enrollment')\nraw = pd.crosstab(df.institution, df.ethnicity)\ndf.shape",
    )
    assert load.reply["status"] == "ok", load.text
    rows = int(re.search(r"\((\d+), 13\)", load.text).group(1))
    assert rows > 1000

    # Which cells are small is learned outside the filter, from the plain pandas count.
    truth = client.execute(
        "demo-researcher",
        kernel_id,
        "import numpy as np\nsmall = [(i, e) for i in raw.index for e in raw.columns "
        "if pd.isna(raw.loc[i, e])]\nlen(small) > 0",
    )
    assert "True" in truth.text, truth.text

    table = client.execute("demo-researcher", kernel_id, "pd.crosstab(df.institution, df.ethnicity)")
    assert table.reply["status"] == "ok"
    assert "*" in table.text and "suppressed: fewer than 10 records" in table.text
    assert "<NA>" not in table.text

    head = client.execute("demo-researcher", kernel_id, "df.head()")
    assert head.reply["status"] == "ok"
    assert "Blocked: record-level data" in head.text
    assert "student_key" not in head.text and "HS0" not in head.text

    printed = client.execute("demo-researcher", kernel_id, "print(df[df.grade_level == 12])")
    assert "Blocked: record-level data" in printed.text


def test_reviewer_gets_no_research_server(hub):
    secret = pyotp.random_base32()
    hub.store().set_totp("demo-reviewer", secret)  # reviewers need a second factor (policy totp_roles)
    client = HubClient(hub.url)
    assert (
        client.login("demo-reviewer", hub.passwords["demo-reviewer"], otp=pyotp.TOTP(secret).now()).status_code == 302
    )
    client.session.get(f"{hub.url}/hub/spawn/demo-reviewer", timeout=60)
    page = client.session.get(f"{hub.url}/hub/spawn-pending/demo-reviewer", timeout=60)
    assert "Reviewers review release requests; they do not get a research server." in page.text
    lab = client.session.get(f"{hub.url}/user/demo-reviewer/lab", timeout=60)
    assert "JupyterLab" not in lab.text


def _researcher_kernel(hub) -> tuple[HubClient, str]:
    client = HubClient(hub.url)
    assert client.login("demo-researcher", hub.passwords["demo-researcher"]).status_code == 302
    client.open_lab("demo-researcher")
    started = client.start_kernel("demo-researcher")
    assert started.status_code == 201, started.text
    return client, started.json()["id"]


def test_output_sent_around_the_filter_is_blocked_by_the_server(hub):
    client, kernel_id = _researcher_kernel(hub)
    sealed = client.execute("demo-researcher", kernel_id, "print('through the gate')")
    assert "through the gate" in sealed.text
    raw = client.execute(
        "demo-researcher",
        kernel_id,
        "from jupyter_client.session import Session\n"
        "k = get_ipython().kernel\n"
        "raw = Session(key=k.session.key, username=k.session.username, session=k.session.session)\n"
        "raw.send(k.iopub_socket, 'stream', {'name': 'stdout', 'text': 'RAW-AROUND-THE-GATE'}, "
        "parent=k.get_parent())\n"
        "import time; time.sleep(0.5)",
    )
    assert raw.reply["status"] == "ok", raw.text
    assert "RAW-AROUND-THE-GATE" not in raw.text
    assert "did not come through the output filter" in raw.text


def test_tampering_in_the_kernel_stops_all_output(hub):
    client, kernel_id = _researcher_kernel(hub)
    client.execute("demo-researcher", kernel_id, "import pandas as pd\npd.DataFrame.__repr__ = lambda self: 'mine'")
    after = client.execute("demo-researcher", kernel_id, "print('anything')")
    assert "anything" not in after.text
    assert "tampered with (DataFrame.__repr__ replaced)" in after.text
    # The kernel writes no database: its server posts the event to the hub, under its own user.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [e for e in hub.audit() if e.event == "kernel.tamper"]
        if found:
            break
        time.sleep(0.5)
    assert found and found[-1].actor == "demo-researcher"
    assert found[-1].details["what"] == "DataFrame.__repr__ replaced"


def test_saved_notebooks_keep_only_outputs_that_passed(hub):
    client, kernel_id = _researcher_kernel(hub)
    passed = client.execute("demo-researcher", kernel_id, "print('checked output 41')")
    assert "checked output 41" in passed.text
    cell = {
        "cell_type": "code",
        "metadata": {},
        "execution_count": 1,
        "source": "print('checked output 41')",
        "outputs": [
            {"output_type": "stream", "name": "stdout", "text": "checked output 41\n"},
            {"output_type": "stream", "name": "stdout", "text": "FORGED ROWS 2004 2005\n"},
            {"output_type": "display_data", "metadata": {}, "data": {"text/plain": "FORGED TABLE"}},
        ],
    }
    notebook = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    saved = client.api(
        "demo-researcher",
        "PUT",
        "contents/guarded.ipynb",
        json={"type": "notebook", "format": "json", "content": notebook},
    )
    assert saved.status_code in (200, 201), saved.text
    stored = (hub.state / "users" / "demo-researcher" / "guarded.ipynb").read_text()
    assert "checked output 41" in stored
    assert "FORGED" not in stored
    assert stored.count("did not come through the output filter") == 2


def test_an_author_runs_a_report_from_her_own_kernel(hub):
    """What the README tells a report author to try first, as her own account."""
    client = HubClient(hub.url)
    assert client.login("demo-author", hub.passwords["demo-author"]).status_code == 302
    client.open_lab("demo-author")
    kernel_id = client.start_kernel("demo-author").json()["id"]
    out = client.execute(
        "demo-author",
        kernel_id,
        "from templates.runner import run_report\n"
        "result = run_report('course_success', {'years': '2024-25'}, 'reports')\nprint(result.html.name)",
        timeout=300,
    )
    assert out.reply["status"] == "ok", out.text
    assert "course_success.html" in out.text
    html = (hub.state / "users" / "demo-author" / "reports" / "course_success.html").read_text()
    assert "Course success rate by term" in html and "By race/ethnicity" in html
    assert "report.start(" not in html and "What was suppressed, and why" in html


def test_a_kernel_forked_from_the_servers_zygote_is_interrupted_restarted_and_shut_down(hub):
    """Kernels come from the server's kernel zygote (hub.forkserver), not new interpreters;
    jupyter_client still reaches them: interrupt, restart and shutdown."""
    import threading
    import time
    from pathlib import Path

    client, kernel_id = _researcher_kernel(hub)
    name = "demo-researcher"
    first = client.execute(name, kernel_id, "import os\nprint('pid', os.getpid(), os.getppid())")
    pid, parent = (int(n) for n in re.search(r"pid (\d+) (\d+)", first.text).groups())
    assert Path(f"/proc/{parent}/cmdline").read_bytes().startswith(b"enclave kernel zygote")
    assert b"kernels.launcher" in Path(f"/proc/{pid}/cmdline").read_bytes()  # what ps shows

    slow: dict = {}
    started = time.monotonic()
    worker = threading.Thread(
        target=lambda: slow.update(out=client.execute(name, kernel_id, "import time\ntime.sleep(60)", timeout=90))
    )
    worker.start()
    time.sleep(2)
    assert client.api(name, "POST", f"kernels/{kernel_id}/interrupt").status_code == 204
    worker.join(timeout=60)
    assert slow["out"].reply["status"] == "error" and slow["out"].reply["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - started < 30

    assert client.api(name, "POST", f"kernels/{kernel_id}/restart").status_code == 200
    again = client.execute(name, kernel_id, "import os\nprint('pid', os.getpid())")
    new_pid = int(re.search(r"pid (\d+)", again.text).group(1))
    assert new_pid != pid and not _running(pid)

    assert client.api(name, "DELETE", f"kernels/{kernel_id}").status_code == 204
    deadline = time.monotonic() + 30
    while _running(new_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(new_pid)


def _running(pid: int) -> bool:
    from pathlib import Path

    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in {"Z", "X"}
