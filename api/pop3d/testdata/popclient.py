#!/usr/bin/env python3
"""Drive Python's poplib against a POP3 server for the pop3d tests.

Connection from the environment: POP_HOST, POP_PORT, POP_USER, POP_PASS,
POP_TLS ("stls": upgrade with STLS, "implicit": POP3_SSL, else plain) and
POP_CAFILE (certificate to trust). Each argument is one step:

  capa stat list uidl rset noop quit   the poplib call of that name
  retr:N top:N:L dele:N list:N uidl:N  with message numbers / line counts

The result is one JSON list on stdout, an entry per step: the reply, or
{"error": "..."} when the server answered -ERR. Message lines are decoded as
latin-1 so the bytes survive.
"""
import json
import os
import poplib
import ssl
import sys


def main():
    host, port = os.environ["POP_HOST"], int(os.environ["POP_PORT"])
    mode = os.environ.get("POP_TLS", "")
    ctx = None
    if mode:
        ctx = ssl.create_default_context(cafile=os.environ["POP_CAFILE"])
    if mode == "implicit":
        p = poplib.POP3_SSL(host, port, context=ctx, timeout=30)
    else:
        p = poplib.POP3(host, port, timeout=30)
        if mode == "stls":
            p.stls(context=ctx)
    p.user(os.environ["POP_USER"])
    p.pass_(os.environ.get("POP_PASS", "any"))
    out = []
    for step in sys.argv[1:]:
        name, *args = step.split(":")
        args = [int(a) for a in args]
        try:
            out.append(run(p, name, args))
        except poplib.error_proto as e:
            out.append({"error": e.args[0].decode("latin-1")})
    json.dump(out, sys.stdout)


def lines(resp):
    return [l.decode("latin-1") for l in resp[1]]


def run(p, name, args):
    if name == "capa":
        return sorted(p.capa().keys())
    if name == "stat":
        return list(p.stat())
    if name in ("list", "uidl"):
        r = getattr(p, name)(*args)
        return r.decode("latin-1") if args else lines(r)
    if name == "retr":
        return lines(p.retr(*args))
    if name == "top":
        return lines(p.top(*args))
    if name in ("dele", "rset", "noop", "quit"):
        return getattr(p, name)(*args).decode("latin-1")
    raise SystemExit("unknown step " + name)


if __name__ == "__main__":
    main()
