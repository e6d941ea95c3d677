"""Two real Python SSE client libraries subscribed to one event stream, for tests/sse_clients.rs.

Usage: python3 python_clients.py URL WANT TIMEOUT_SECONDS

httpx-sse (reconnecting by hand with Last-Event-ID, as its README shows) and aiohttp-sse-client
(which reconnects by itself and sends Last-Event-Id) each collect the data of `message` events
until they have WANT of them. Prints one JSON line per connection opened ({"client", "open"})
and, at the end, {"results": {client: {"messages": [...], "opens": n}}}.
"""

import asyncio
import json
import sys
import threading
import time
from datetime import timedelta

import httpx
from aiohttp_sse_client import client as sse_client
from httpx_sse import connect_sse

URL, WANT, TIMEOUT = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
results = {}


def say(line):
    print(json.dumps(line), flush=True)


def httpx_subscriber():
    got, last, opens = [], None, 0
    deadline = time.time() + TIMEOUT
    while len(got) < WANT and time.time() < deadline:
        headers = {"Last-Event-ID": last} if last else {}
        try:
            with httpx.Client(timeout=httpx.Timeout(5.0, read=TIMEOUT)) as client:
                with connect_sse(client, "GET", URL, headers=headers) as source:
                    opens += 1
                    say({"client": "httpx-sse", "open": opens})
                    for event in source.iter_sse():
                        if event.id:
                            last = event.id
                        # httpx-sse dispatches at every blank line once an id was seen, even
                        # with no data (after a keep-alive comment or the `retry:` line);
                        # WHATWG's parser (section 9.2.6) drops those, so a consumer skips them.
                        if event.event == "message" and event.data != "":
                            got.append(event.data)
                            if len(got) >= WANT:
                                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    results["httpx-sse"] = {"messages": got, "opens": opens}


async def aiohttp_subscriber():
    got, opens = [], 0

    def opened():
        nonlocal opens
        opens += 1
        say({"client": "aiohttp-sse-client", "open": opens})

    try:
        async with sse_client.EventSource(
            URL,
            reconnection_time=timedelta(seconds=0.5),
            max_connect_retry=20,
            on_open=opened,
            timeout=None,
        ) as source:
            async for event in source:
                if event.type == "message":
                    got.append(event.data)
                    if len(got) >= WANT:
                        break
    except Exception as error:  # reported in the results, the test fails on the count
        got.append(f"error: {error!r}")
    results["aiohttp-sse-client"] = {"messages": got, "opens": opens}


def run_aiohttp():
    asyncio.run(asyncio.wait_for(aiohttp_subscriber(), TIMEOUT))


threads = [threading.Thread(target=httpx_subscriber), threading.Thread(target=run_aiohttp)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
say({"results": results})
