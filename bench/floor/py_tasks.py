"""N Python workers as asyncio tasks in one process (bench/floor, row 4):
one unix-socket connection to py_bus.py shared by all, a subscription per
task (idle.<i>.>, a topic nobody publishes on), an asyncio.Queue per task
fed by one reader task, and per task a heartbeat every INTERVAL seconds, all
under one asyncio.TaskGroup (the supervisor: a task that fails cancels the
group). Prints "ready" once every task has subscribed.

    python3 py_tasks.py SOCKET_PATH N [INTERVAL_S]
"""
import asyncio
import json
import logging
import sys

log = logging.getLogger("tasks")


async def reader_task(reader, queues):
    while line := await reader.readline():
        m = json.loads(line)
        q = queues.get(m["topic"].split(".")[1])
        if q is not None:
            q.put_nowait(m)


async def worker(index, writer, queue, interval, subscribed):
    name = f"w{index}"
    writer.write((json.dumps({"op": "sub", "pattern": f"idle.{index}.>"}) + "\n").encode())
    subscribed()
    loop = asyncio.get_running_loop()
    started = loop.time()
    beat = started + interval
    received = 0
    while True:
        try:
            async with asyncio.timeout_at(beat):
                m = await queue.get()
            received += 1
            log.debug("%s: %s", name, m["topic"])
        except TimeoutError:
            beat += interval
            hb = {"op": "hb", "worker": name, "state": "running", "received": received,
                  "uptime_s": round(loop.time() - started)}
            writer.write((json.dumps(hb) + "\n").encode())


async def main(path, n, interval):
    reader, writer = await asyncio.open_unix_connection(path)
    queues = {str(i): asyncio.Queue(maxsize=1024) for i in range(n)}
    left = n

    def subscribed():
        nonlocal left
        left -= 1
        if left == 0:
            print("ready", flush=True)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(reader_task(reader, queues))
        for i in range(n):
            tg.create_task(worker(i, writer, queues[str(i)], interval, subscribed))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 10.0))
    except KeyboardInterrupt:
        pass
