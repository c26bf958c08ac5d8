"""A lean Python bus worker, one process each (bench/floor, row 3): imports
asyncio, json and logging, connects to py_bus.py's unix socket, subscribes
to idle.<i>.> (a topic nobody publishes on), and sends a heartbeat line
every INTERVAL seconds while waiting for events.

    python3 py_worker.py SOCKET_PATH INDEX [INTERVAL_S]
"""
import asyncio
import json
import logging
import sys

log = logging.getLogger("worker")


async def main(path, index, interval):
    name = f"w{index}"
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write((json.dumps({"op": "sub", "pattern": f"idle.{index}.>"}) + "\n").encode())
    await writer.drain()
    loop = asyncio.get_running_loop()
    started = loop.time()
    beat = started + interval
    received = 0
    while True:
        try:
            async with asyncio.timeout_at(beat):
                line = await reader.readline()
            if not line:
                return
            received += 1
            log.debug("%s: %s", name, json.loads(line)["topic"])
        except TimeoutError:
            beat += interval
            hb = {"op": "hb", "worker": name, "state": "running", "received": received,
                  "uptime_s": round(loop.time() - started)}
            writer.write((json.dumps(hb) + "\n").encode())
            await writer.drain()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 10.0))
    except KeyboardInterrupt:
        pass
