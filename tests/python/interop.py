"""A Python `websockets` client against a Moleculer WebSocket gateway: heartbeat, ping,
fan-out and permessage-deflate, so interoperability is not only tested with our own clients.

    python3 tests/python/interop.py --url http://127.0.0.1:3000 [--trigger /api/websocket/send]

Prints one line per check and the closing line `N passed, N failed`; exits 1 on a failure.
"""
import argparse
import asyncio
import json
import sys
import time
import urllib.request

import websockets

WAIT = 5.0


def trigger(base, route, path, data):
    body = json.dumps({"path": path, "data": data}).encode()
    req = urllib.request.Request(base + route, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=WAIT) as resp:
        if resp.status >= 300:
            raise RuntimeError(f"trigger answered HTTP {resp.status}")


async def heartbeat(ws_base, base, route):
    async with websockets.connect(ws_base + "/ws/python/heartbeat") as ws:
        for frame in ("!", "!ping"):
            await ws.send(frame)
            got = await asyncio.wait_for(ws.recv(), WAIT)
            if got != "!":
                raise AssertionError(f"{frame!r} answered with {got!r}")
    return "`!` and `!ping` answered with `!`"


async def ping(ws_base, base, route):
    async with websockets.connect(ws_base + "/ws/python/ping", ping_interval=None) as ws:
        started = time.monotonic()
        pong = await ws.ping(b"python-ping")
        await asyncio.wait_for(pong, WAIT)
        return f"pong in {(time.monotonic() - started) * 1000:.1f} ms"


async def fan_out(ws_base, base, route, n=20):
    path = "/ws/python/fanout"
    sockets = [await websockets.connect(ws_base + path) for _ in range(n)]
    try:
        await asyncio.get_running_loop().run_in_executor(
            None, trigger, base, route, "ws/python/fanout", {"to": "python", "n": n})
        got = await asyncio.gather(*(asyncio.wait_for(s.recv(), WAIT) for s in sockets))
        want = json.dumps({"to": "python", "n": n}, separators=(",", ":"))
        bad = [g for g in got if g != want]
        if bad:
            raise AssertionError(f"{len(bad)} of {n} sockets got {bad[0]!r}, expected {want!r}")
        return f"all {n} sockets received {want}"
    finally:
        await asyncio.gather(*(s.close() for s in sockets))


async def compressed(ws_base, base, route):
    """websockets offers permessage-deflate by default; a broadcast over the gateway's
    threshold then arrives compressed, and one without the offer arrives plain."""
    path = "/ws/python/deflate"
    offering = await websockets.connect(ws_base + path)
    plain = await websockets.connect(ws_base + path, compression=None)
    try:
        ext = offering.response.headers.get("Sec-WebSocket-Extensions", "")
        if not ext.startswith("permessage-deflate"):
            raise AssertionError(f"permessage-deflate not negotiated: {ext!r}")
        if plain.response.headers.get("Sec-WebSocket-Extensions") is not None:
            raise AssertionError("an extension was negotiated without an offer")
        data = {"rows": [{"id": i, "name": f"row {i}", "tags": ["a", "b"]} for i in range(40)]}
        await asyncio.get_running_loop().run_in_executor(
            None, trigger, base, route, path[1:], data)
        want = json.dumps(data, separators=(",", ":"))
        for ws in (offering, plain):
            got = await asyncio.wait_for(ws.recv(), WAIT)
            if got != want:
                raise AssertionError(f"got {len(got)} characters, expected {len(want)}")
        # The client compresses its own frames too: the heartbeat is still answered.
        await offering.send("!")
        got = await asyncio.wait_for(offering.recv(), WAIT)
        if got != "!":
            raise AssertionError(f"`!` answered with {got!r}")
        return f"{ext}; {len(want)} B broadcast intact with and without it"
    finally:
        await asyncio.gather(offering.close(), plain.close())


async def close(ws_base, base, route):
    ws = await websockets.connect(ws_base + "/ws/python/close")
    await ws.close(code=1000, reason="python")
    if ws.close_code is None:
        raise AssertionError("no close frame came back")
    return f"closed cleanly, server code {ws.close_code}"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--trigger", default="/api/websocket/send")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    ws_base = "ws" + base[len("http"):]
    passed = failed = 0
    for name, check in [("python.heartbeat", heartbeat), ("python.ping", ping),
                        ("python.fan-out", fan_out), ("python.deflate", compressed),
                        ("python.close", close)]:
        try:
            detail = await check(ws_base, base, args.trigger)
            print(f"PASS  {name}  {detail}")
            passed += 1
        except Exception as e:  # every failure is reported, none stops the run
            print(f"FAIL  {name}  {type(e).__name__}: {e}")
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
