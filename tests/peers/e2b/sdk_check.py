#!/usr/bin/env python3
"""The official E2B Python SDK's own sequence against the test peer: proves the peer speaks E2B.

Usage: sdk_check.py http://127.0.0.1:PORT API_KEY
Runs create -> commands.run (exit code, split stdout/stderr, a non-zero exit, a background
process killed) -> files.write/read -> set_timeout -> list by metadata -> kill, and checks the
peer's log saw each. Exits non-zero with the failing step on any mismatch.
"""

import json
import os
import sys
import time
import urllib.request


def main():
    url, key = sys.argv[1], sys.argv[2]
    # The SDK reads these itself; E2B_SANDBOX_URL makes it send every envd call to the peer
    # with the sandbox id in the E2b-Sandbox-Id header. HTTP/1.1: the peer does not speak h2c.
    os.environ.update({"E2B_API_KEY": key, "E2B_API_URL": url, "E2B_SANDBOX_URL": url,
                       "E2B_HTTP_VERSION": "1.1", "E2B_DOMAIN": "peer.invalid"})
    from e2b import Sandbox, SandboxQuery
    from e2b.exceptions import AuthenticationException
    from e2b.sandbox.commands.command_handle import CommandExitException

    def check(cond, what):
        if not cond:
            sys.exit(f"sdk_check FAILED: {what}")
        print(f"ok: {what}", flush=True)

    try:
        Sandbox.create(template="base", api_key="wrong-key")
        check(False, "a wrong API key is refused")
    except AuthenticationException:
        check(True, "a wrong API key is refused (401)")

    tag = f"sdk-check-{os.getpid()}-{time.time_ns()}"
    sbx = Sandbox.create(template="base", timeout=120, metadata={"tb": tag},
                         envs={"FROM_CREATE": "yes"})
    check(sbx.sandbox_id.startswith("tbpeer"), f"create -> {sbx.sandbox_id}")

    r = sbx.commands.run("echo out; echo err >&2; echo $FROM_CREATE; pwd")
    check(r.exit_code == 0, "exit code 0")
    check(r.stdout == "out\nyes\n/home/user\n", f"stdout split: {r.stdout!r}")
    check(r.stderr == "err\n", f"stderr split: {r.stderr!r}")

    try:
        sbx.commands.run("echo bad >&2; exit 7")
        check(False, "non-zero exit raises")
    except CommandExitException as e:
        check(e.exit_code == 7 and e.stderr == "bad\n", f"non-zero exit: {e.exit_code}")

    h = sbx.commands.run("sleep 60", background=True)
    check(h.pid > 0, f"background process pid {h.pid}")
    check(sbx.commands.kill(h.pid), "kill the background process (SendSignal)")
    try:
        h.wait()
        check(False, "a killed process does not exit 0")
    except CommandExitException as e:
        check(e.exit_code != 0, f"killed process ended: {e.error or e.exit_code}")

    info = sbx.files.write("/home/user/dir/hello.txt", "hello from the sdk\n")
    check(info.path == "/home/user/dir/hello.txt", f"files.write -> {info.path}")
    check(sbx.files.read("/home/user/dir/hello.txt") == "hello from the sdk\n", "files.read")
    r = sbx.commands.run("cat dir/hello.txt")
    check(r.stdout == "hello from the sdk\n", "a command sees the written file")

    sbx.set_timeout(200)
    check(True, "set_timeout")
    listed = Sandbox.list(query=SandboxQuery(metadata={"tb": tag})).next_items()
    check([s.sandbox_id for s in listed] == [sbx.sandbox_id], "list by metadata")
    check(Sandbox.list(query=SandboxQuery(metadata={"tb": "other"})).next_items() == [],
          "list by other metadata is empty")

    check(sbx.kill() is True, "kill")
    with urllib.request.urlopen(url + "/_peer/log") as f:
        log = json.load(f)
    kinds = [(e["kind"], e["sandbox"]) for e in log]
    for kind in ("create", "start", "signal", "write", "read", "timeout", "delete"):
        check((kind, sbx.sandbox_id) in kinds, f"peer saw {kind}")
    deadline = time.time() + 10
    while time.time() < deadline:
        with urllib.request.urlopen(f"{url}/_peer/procs?sandbox={sbx.sandbox_id}") as f:
            if not json.load(f)["pids"]:
                break
        time.sleep(0.1)
    check(time.time() < deadline, "no process of the sandbox left")
    print("sdk_check: all passed", flush=True)


if __name__ == "__main__":
    main()
