"""Interactive logins (issue #16): hosts that want a password, a one-time code, a Duo menu
or a host-key decision before the key alone is accepted.

The login *is* the host's sshpyk master: the one ssh that makes it runs with ``BatchMode=no``
and asks every question through ssh's askpass mechanism (``askpass.py``, forced with
``SSH_ASKPASS_REQUIRE=force``), which hands it over a private unix socket to the server
(``bridge.py``); the front end shows it verbatim and sends the answer back the same way.
Everything else on the host (kernels, mounts, checks, discovery) keeps ``BatchMode=yes`` and
rides on that master until it ends.  From a terminal, ``sshpyk login ALIAS`` lets ssh ask on
the terminal itself.  ``logins.py`` keeps one login per host at a time, so three kernels
launched at once on a host that needs one cause one prompt.

Answers go to ssh only: through the socket (in the user's 0700 control dir) into the askpass
process, which writes them to ssh's pipe.  They are never logged, stored, or placed in an
argv or an environment.
"""
