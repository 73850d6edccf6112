"""The jupyter_client kernel provisioner (entry point ``sshpyk-provisioner``)."""

from __future__ import annotations

from jupyter_client.provisioning import LocalProvisioner


class SSHKernelProvisioner(LocalProvisioner):
    """Placeholder until the provisioner lands: refuses to launch rather than run locally."""

    async def pre_launch(self, **kwargs):
        raise RuntimeError("sshpyk: SSHKernelProvisioner is not implemented in this build yet")
