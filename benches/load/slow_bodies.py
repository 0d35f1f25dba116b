"""Slow bodies from one address, /healthz from another (used by slow_bodies.sh).

    python3 slow_bodies.py attack HOST PORT KEY COUNT SECONDS
        opens COUNT connections from 127.0.0.1, each sending the head of an authenticated
        POST /check-prime whose 100-byte body never comes, holds them for SECONDS, and prints
        "ATTACK opened answered_429 answered_408 other_answers no_answer".
    python3 slow_bodies.py probe HOST PORT SECONDS
        from 127.0.0.2, one GET /healthz after another on a new connection each, for SECONDS,
        and prints "PROBE requests p50_ms p99_ms max_ms failed".
"""
import asyncio
import sys
import time


async def attack(host, port, key, count, seconds):
    head = (
        f"POST /check-prime HTTP/1.1\r\nHost: {host}\r\nAuthorization: {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    ).encode()
    answers = {"429": 0, "408": 0, "other": 0}
    opened = 0
    streams = []

    async def hold(reader):
        try:
            line = await reader.readline()
        except (ConnectionError, OSError):
            return
        status = line.split(b" ")[1].decode() if line.count(b" ") >= 1 else ""
        answers[status if status in answers else "other"] += 1

    tasks = []
    deadline = time.monotonic() + seconds
    for _ in range(count):
        try:
            reader, writer = await asyncio.open_connection(host, port, local_addr=("127.0.0.1", 0))
            writer.write(head)
            streams.append(writer)
            opened += 1
            tasks.append(asyncio.create_task(hold(reader)))
        except OSError:
            await asyncio.sleep(0.01)
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    answered = sum(answers.values())
    print(f"ATTACK {opened} {answers['429']} {answers['408']} {answers['other']} {opened - answered}",
          flush=True)
    for writer in streams:
        writer.transport.abort()


async def probe(host, port, seconds):
    latencies, failed = [], 0
    deadline = time.monotonic() + seconds
    request = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, local_addr=("127.0.0.2", 0)), 5)
            writer.write(request)
            line = await asyncio.wait_for(reader.readline(), 5)
            writer.close()
            if not line.startswith(b"HTTP/1.1 200"):
                failed += 1
                continue
            latencies.append((time.monotonic() - started) * 1000)
        except (OSError, asyncio.TimeoutError):
            failed += 1
        await asyncio.sleep(0.005)
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")
    print(f"PROBE {len(latencies)} {pick(0.5):.2f} {pick(0.99):.2f} {max(latencies, default=float('nan')):.2f} {failed}",
          flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "attack":
        asyncio.run(attack(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), float(sys.argv[6])))
    else:
        asyncio.run(probe(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
