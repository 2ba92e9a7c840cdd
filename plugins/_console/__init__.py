"""The administrator's console: a live Python shell inside the running application.

Two front doors share one shell: the ``telnet`` plugin (:mod:`tapster.plugins.telnet`)
and the SSH ``manhole`` plugin (:mod:`tapster.plugins.manhole`). The parts, each
small and testable without a socket:

* :mod:`.negotiation`: telnet's byte stream, IAC commands and option
  negotiation, as a bytes-in/events-out parser;
* :mod:`.editor`: server-side line editing (echo, backspace, history, ^C, ^D);
* :mod:`.shell`: the interpreter (``>>>``/``...``, output to the client,
  tracebacks that never reach the reactor);
* :mod:`.auth`: salted slow password hashes and the per-address slow-down;
* :mod:`.console`: who may log in and the limits (saved), the open sessions
  and the shared namespace (not saved);
* :mod:`.options`: the command-line options both plugins share;
* :mod:`.telnet`: the telnet protocol and factory tying those together;
* :mod:`.service`: the services saved in applications (they find the root
  application when they start);
* :mod:`.ssh`: the asyncssh glue, imported only when a manhole starts;
  :mod:`.listen` binds its socket.

Classes saved in application files (the services, the console, the telnet
factory) live in :mod:`.service`, :mod:`.console` and :mod:`.telnet`; their
import paths are part of the file-format promise.
"""
