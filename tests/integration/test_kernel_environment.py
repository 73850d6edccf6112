"""The kernel's environment on the host (issue #18): the kernelspec's ``prelude`` (lines of
shell in a login shell before the kernel) and ``env``, on the real test host."""

from __future__ import annotations

import pytest
from helpers import run_code, start

from sshpyk.errors import RemoteLaunchError


async def test_prelude_and_env_make_the_kernels_environment(netns_hosts, specs, managers):
    # a stand-in for `module load`: a function the login shell's profile would define
    profile = "mkmod() { export PATH=$HOME/modbin-test:$PATH; export LOADED_MODULE=$1; }"
    assert netns_hosts.ssh("remote", "mkdir -p ~/modbin-test").returncode == 0
    try:
        km = managers(
            specs(
                "ssh-env",
                channels="relay",
                prelude=[profile, "mkmod python/3.11  # as module load would"],
            )
        )
        # env is kernel.json's own field (Jupyter's), which sshpyk sets on the host
        km.kernel_spec.env = {"OMP_NUM_THREADS": "3"}
        kc = await start(km)
        out, _ = await run_code(
            kc,
            "import os; print(os.environ['LOADED_MODULE'], os.environ['OMP_NUM_THREADS'], "
            "os.environ['PATH'].split(':')[0].endswith('modbin-test'))",
        )
        assert out.split() == ["python/3.11", "3", "True"], out
        # the restart runs the prelude again: the same environment
        await km.restart_kernel(now=True)
        await kc.wait_for_ready(timeout=30)
        out, _ = await run_code(kc, "import os; print(os.environ['LOADED_MODULE'])")
        assert out.strip() == "python/3.11"
        kc.stop_channels()
        await km.shutdown_kernel()
    finally:
        netns_hosts.ssh("remote", "rm -rf ~/modbin-test")


async def test_a_failing_prelude_says_which_line_and_what_it_said(netns_hosts, specs, managers):
    km = managers(specs("ssh-badprelude", prelude=["true", "module load nosuch/1.0"]))
    with pytest.raises(RemoteLaunchError) as e:
        await km.start_kernel()
    text = str(e.value)
    assert "prelude failed on 'remote': line 2 ended with exit status 127" in text, text
    assert "module" in text and "not found" in text, text
    assert km.provisioner.status()["state"] == "dead"


def test_sshpyk_check_runs_the_prelude_as_the_kernel_would(netns_hosts, specs):
    import json

    from helpers import sshpyk_cli

    good = sshpyk_cli("check", specs("ssh-check-prelude", prelude=["export X=1"]), "--json")
    checks = {c["id"]: c for c in json.loads(good.stdout)["checks"]}
    assert checks["remote_python"]["status"] == "ok", checks["remote_python"]
    bad = sshpyk_cli("check", specs("ssh-check-badprelude", prelude=["false"]), "--json")
    checks = {c["id"]: c for c in json.loads(bad.stdout)["checks"]}
    assert bad.returncode == 1 and checks["remote_python"]["status"] == "fail"
    assert "prelude failed on 'remote': line 1" in checks["remote_python"]["hint"]
