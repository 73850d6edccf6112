"""The jupyter_server extension: REST endpoints under ``<base_url>/sshpyk/``."""
