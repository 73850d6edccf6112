"""Programs sshpyk runs on the remote host with the remote environment's python.

They travel over ssh stdin (never argv: the launcher's parameters hold the HMAC key) and
answer with ``SSHPYK <json>`` lines, so noise from the user's shell start-up files is
ignored.  The remote host needs only python and jupyter_client, never sshpyk.  How they
travel and what they say: ``sshpyk.remote.protocol``.
"""
