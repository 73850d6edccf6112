"""A remote kernel as jupyter_client sees it.

``provisioner``: the jupyter_client adapter (``SSHKernelProvisioner``, entry point
``sshpyk-provisioner``).  ``remote_kernel``: launch, attach, the monitor stream, signals and
recovery of one kernel.  ``channels``: how clients reach its channels (the channel path).
``watchdog``: pings and the tunnel state machine.  ``backend``: where its remote programs run.
"""
