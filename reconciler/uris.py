"""Which libvirt connection URIs a manifest may name: never one that starts a program.

libvirt's `ext` transport runs the `command=` it is given, its ssh transport runs the `command=`
or `netcat=` binary it is given, and other parameters choose helpers. A manifest comes from a pull
request, so only these forms are accepted (QEMU driver, /system or /session):

  qemu:///system                                  local daemon (socket=PATH allowed)
  qemu+unix:///system?socket=PATH                 local daemon on another socket
  qemu+ssh://[user@]host[:port]/system            ssh (keyfile, known_hosts..., see below)
  qemu+tls://host[:port]/system, qemu://host/...  TLS (pkipath, no_verify, tls_priority)
  qemu+tcp://host[:port]/system                   unencrypted: only with `insecure_tcp: true`
"""
from __future__ import annotations

import ipaddress
import re

_PARAMS = {
    "": {"socket"},
    "unix": {"socket"},
    "ssh": {"keyfile", "no_verify", "no_tty", "socket", "mode"},
    "tls": {"pkipath", "no_verify", "tls_priority", "mode"},
    "tcp": {"mode"},
}
ACCEPTED_PARAMS = {name for names in _PARAMS.values() for name in names}
_VALUES = {
    "socket": re.compile(r"^/[A-Za-z0-9_./@+-]*$"),
    "keyfile": re.compile(r"^/[A-Za-z0-9_./@+-]*$"),
    "pkipath": re.compile(r"^/[A-Za-z0-9_./@+-]*$"),
    "no_verify": re.compile(r"^[01]$"),
    "no_tty": re.compile(r"^[01]$"),
    "mode": re.compile(r"^(auto|legacy|direct)$"),
    "tls_priority": re.compile(r"^[A-Za-z0-9:+!._-]+$"),
}
_URI = re.compile(r"""^qemu(?:\+(?P<transport>[a-z0-9]+))?://
                      (?:(?P<user>[^@/?]*)@)?
                      (?P<host>\[[0-9A-Fa-f:.]+\]|[^:/?]*)
                      (?::(?P<port>[^/?]*))?
                      (?P<path>/[^?]*)
                      (?:\?(?P<query>.*))?$""", re.X)
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def problem(uri: str, allow_tcp: bool = False) -> str | None:
    """Why `uri` is refused, or None when it is one of the accepted forms."""
    if not isinstance(uri, str) or "%" in uri or any(c.isspace() or not c.isprintable() for c in uri):
        return "a URI here has no spaces, control characters or %-escapes"
    found = _URI.match(uri)
    if not found:
        return ("not a QEMU connection URI: use qemu:///system, qemu+ssh://[user@]host/system, "
                "qemu+tls://host/system or qemu+unix:///system?socket=PATH")
    transport = found["transport"] or ("tls" if found["host"] else "")
    if transport not in _PARAMS:
        return (f"transport {transport!r} is not accepted (accepted: unix, ssh, tls, tcp); "
                "'ext' and the libssh transports are refused because they can run programs or are untested")
    if transport == "tcp" and not allow_tcp:
        return "qemu+tcp:// is unencrypted: set 'insecure_tcp: true' on the Host to use it"
    if found["path"] not in ("/system", "/session"):
        return f"the path must be /system or /session, not {found['path']!r}"
    remote = transport in ("ssh", "tls", "tcp")
    host, user, port = found["host"], found["user"], found["port"]
    if remote and not host:
        return f"qemu+{transport}:// needs a host name"
    if not remote and (host or user is not None or port is not None):
        return "a local URI names no host, user or port"
    if host and not (_ipv6(host) if host.startswith("[") else _HOSTNAME.match(host)):
        return f"{host!r} is not a host name or IP address"
    if user is not None and not _USER.match(user):
        return f"{user!r} is not a user name (letters, digits, '_', '.', '-'; not starting with '-')"
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        return f"{port!r} is not a port number"
    return _query_problem(found["query"], transport)


def _ipv6(bracketed: str) -> bool:
    try:
        ipaddress.IPv6Address(bracketed[1:-1])
    except ValueError:
        return False
    return True


def _query_problem(query: str | None, transport: str) -> str | None:
    if query is None:
        return None
    allowed = _PARAMS[transport]
    seen = set()
    for part in re.split(r"[&;]", query):
        name, sep, value = part.partition("=")
        if name not in allowed:
            why = " (it runs a program)" if name in ("command", "netcat", "proxy") else ""
            accepted = ", ".join(sorted(allowed)) or "none"
            return f"URI parameter {name!r} is not accepted{why}; for this transport: {accepted}"
        if not sep or not _VALUES[name].match(value) or name in seen:
            return f"URI parameter {name}={value!r} is not accepted (bad value or repeated)"
        if name == "socket" and len(value.encode()) > 107:
            return "a unix socket path is at most 107 bytes long"
        seen.add(name)
    return None
