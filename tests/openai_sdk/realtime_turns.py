"""Drives a real Adam through the official OpenAI Python SDK's realtime client.

Run by the Rust integration test `openai_realtime` (tests/api/openai_realtime.rs) with the
SDK installed by scripts/openai-sdk.sh:

    python realtime_turns.py BASE_URL API_KEY SCENARIO [PCM_FILE ...]

BASE_URL is Adam's origin (the SDK gets `BASE_URL/v1`, as a user would configure it).
PCM files are 24 kHz PCM16 little-endian mono (espeak-ng speech the test synthesised).
Every server event is validated against the SDK's own pydantic models of the GA schema
(`openai.types.realtime.RealtimeServerEvent`): an event they cannot parse fails the run.
Prints one JSON object with what happened; exit status 1 on any failure.
"""

import asyncio
import base64
import json
import sys
import time

from openai import AsyncOpenAI
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

SERVER_EVENT = TypeAdapter(RealtimeServerEvent)
TIMEOUT = 90.0
RATE = 24_000


class Run:
    def __init__(self, connection):
        self.connection = connection
        self.events = []
        self.invalid = []
        self.audio_bytes = 0

    async def next(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no event in time; seen: " + " ".join(e["type"] for e in self.events[-30:]))
        raw = await asyncio.wait_for(self.connection.recv_bytes(), timeout=left)
        event = json.loads(raw)
        try:
            # Strict: the SDK's own models must parse every event Adam sends.
            SERVER_EVENT.validate_python(event)
        except Exception as e:  # noqa: BLE001 - the message is the report
            self.invalid.append({"type": event.get("type"), "error": str(e)[:400]})
        # The SDK's own parser, as `connection.recv()` uses it, must give a typed model.
        parsed = self.connection.parse_event(raw)
        if type(parsed).__name__ == "dict":
            self.invalid.append({"type": event.get("type"), "error": "parse_event gave a dict"})
        if event["type"] == "response.output_audio.delta":
            self.audio_bytes += len(base64.b64decode(event["delta"]))
            event = {k: v for k, v in event.items() if k != "delta"}
        self.events.append(event)
        return event

    async def until(self, kind, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            event = await self.next(deadline)
            if event["type"] == "error":
                raise RuntimeError("error event: " + json.dumps(event))
            if event["type"] == kind:
                return event

    def of(self, kind):
        return [e for e in self.events if e["type"] == kind]


def pcm(path):
    with open(path, "rb") as f:
        return f.read()


async def send_audio(connection, audio, chunk_ms=100, pace=True):
    step = RATE * 2 * chunk_ms // 1000
    for i in range(0, len(audio), step):
        await connection.input_audio_buffer.append(audio=base64.b64encode(audio[i : i + step]).decode())
        if pace:
            await asyncio.sleep(chunk_ms / 1000)


def silence(ms):
    return b"\x00\x00" * (RATE * ms // 1000)


async def typed(run):
    c = run.connection
    await c.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": sys.argv[4]}]}
    )
    await run.until("conversation.item.done")
    await c.response.create()
    done = await run.until("response.done")
    return {"answer": answer_of(done)}


def answer_of(done):
    parts = done["response"]["output"][0]["content"] if done["response"]["output"] else []
    return " ".join(p.get("transcript") or p.get("text") or "" for p in parts)


async def spoken_vad(run, files):
    c = run.connection
    await send_audio(c, silence(300) + pcm(files[0]) + silence(1500))
    completed = await run.until("conversation.item.input_audio_transcription.completed")
    done = await run.until("response.done")
    return {"heard": completed["transcript"], "answer": answer_of(done), "status": done["response"]["status"]}


async def manual_commit(run, files):
    c = run.connection
    await c.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": None}}})
    updated = await run.until("session.updated")
    assert updated["session"]["audio"]["input"]["turn_detection"] is None, updated
    # The whole question at once, no pacing: nothing happens until the commit.
    await send_audio(c, pcm(files[0]), pace=False)
    await c.input_audio_buffer.commit()
    committed = await run.until("input_audio_buffer.committed")
    await c.response.create()
    completed = await run.until("conversation.item.input_audio_transcription.completed")
    done = await run.until("response.done")
    return {
        "committed_item": committed["item_id"],
        "transcribed_item": completed["item_id"],
        "heard": completed["transcript"],
        "answer": answer_of(done),
        "status": done["response"]["status"],
    }


async def barge_in(run, files):
    c = run.connection
    await c.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": sys.argv[4]}]}
    )
    await c.response.create()
    created = await run.until("response.created")
    first = await run.until("response.output_audio.delta")
    started = time.monotonic()
    item_id = first["item_id"]
    # The caller talks over the answer.
    await send_audio(c, pcm(files[0]) + silence(1500), pace=False)
    await run.until("input_audio_buffer.speech_started")
    cancelled = await run.until("response.done")
    played_ms = int((time.monotonic() - started) * 1000)
    # As the SDK's examples do: tell the server how much of the answer was heard.
    await c.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=played_ms)
    truncated = await run.until("conversation.item.truncated")
    second = await run.until("response.done")
    return {
        "first_response": created["response"]["id"],
        "cancelled_status": cancelled["response"]["status"],
        "cancelled_reason": (cancelled["response"].get("status_details") or {}).get("reason"),
        "cancelled_id": cancelled["response"]["id"],
        "truncated_item": truncated["item_id"],
        "item_id": item_id,
        "second_status": second["response"]["status"],
        "second_answer": answer_of(second),
    }


async def main():
    base_url, api_key, scenario = sys.argv[1], sys.argv[2], sys.argv[3]
    files = [a for a in sys.argv[4:] if a.endswith(".pcm")]
    client = AsyncOpenAI(api_key=api_key, base_url=base_url + "/v1")
    report = {"scenario": scenario}
    try:
        async with client.realtime.connect(model="gpt-realtime") as connection:
            run = Run(connection)
            created = await run.until("session.created")
            report["model"] = created["session"]["model"]
            await connection.session.update(
                session={
                    "type": "realtime",
                    "instructions": "Answer in one short sentence.",
                    "audio": {
                        "input": {
                            "format": {"type": "audio/pcm", "rate": 24000},
                            "turn_detection": {"type": "server_vad", "silence_duration_ms": 600},
                        },
                        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
                    },
                    "tools": [],
                }
            )
            updated = await run.until("session.updated")
            report["instructions"] = updated["session"]["instructions"]
            scenarios = {"typed": lambda: typed(run), "spoken_vad": lambda: spoken_vad(run, files),
                         "manual_commit": lambda: manual_commit(run, files), "barge_in": lambda: barge_in(run, files)}
            report.update(await scenarios[scenario]())
            report["audio_bytes"] = run.audio_bytes
            report["types"] = sorted({e["type"] for e in run.events})
            report["invalid"] = run.invalid
            report["done_usage"] = [e["response"].get("usage") for e in run.of("response.done")]
            report["speech_started"] = len(run.of("input_audio_buffer.speech_started"))
            report["ok"] = not run.invalid
    except Exception as e:  # noqa: BLE001 - reported to the Rust test
        report["ok"] = False
        report["failure"] = f"{type(e).__name__}: {e}"
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
