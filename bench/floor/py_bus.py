"""The Python baselines' bus (bench/floor, rows 3 and 4): one small asyncio
server on a unix socket, speaking JSON lines.

  {"op": "sub", "pattern": "idle.3.>"}      a subscription of this connection
  {"op": "hb", "worker": "w3", ...}         a heartbeat (counted)
  {"op": "pub", "topic": T, "payload": P}   delivered to every matching sub
                                            as {"topic": T, "payload": P}
  {"op": "stat"}                            answered {"conns", "subs", "hb"}

It stands for herdd's broker, so a Python worker has somewhere to subscribe
and to send its heartbeat. It is one process whatever N is; bench/floor
reports its memory apart and leaves it out of the rows' totals.

    python3 py_bus.py SOCKET_PATH
"""
import asyncio
import json
import sys

conns = 0
subs = []  # (pattern tokens, writer)
heartbeats = 0


def match(pattern, topic):
    for i, p in enumerate(pattern):
        if p == ">":
            return len(topic) > i
        if i >= len(topic) or (p != "*" and p != topic[i]):
            return False
    return len(pattern) == len(topic)


async def client(reader, writer):
    global conns, heartbeats
    conns += 1
    mine = []
    try:
        while line := await reader.readline():
            m = json.loads(line)
            op = m.get("op")
            if op == "sub":
                s = (m["pattern"].split("."), writer)
                subs.append(s)
                mine.append(s)
            elif op == "hb":
                heartbeats += 1
            elif op == "pub":
                out = (json.dumps({"topic": m["topic"], "payload": m.get("payload")}) + "\n").encode()
                topic = m["topic"].split(".")
                for pattern, w in subs:
                    if match(pattern, topic):
                        w.write(out)
            elif op == "stat":
                writer.write((json.dumps({"conns": conns, "subs": len(subs), "hb": heartbeats}) + "\n").encode())
                await writer.drain()
    except (ConnectionError, ValueError):
        pass
    finally:
        conns -= 1
        for s in mine:
            subs.remove(s)
        writer.close()


async def main(path):
    server = await asyncio.start_unix_server(client, path=path, backlog=4096)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1]))
    except KeyboardInterrupt:
        pass
