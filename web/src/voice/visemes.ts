//! Mouth shapes against the audio clock: `avatar.viseme` events are kept per response until
//! that response's audio is placed on the clock, then looked up by time (no timers). Pure:
//! the caller passes the clock readings.

import type { Viseme } from "./events";

interface Shape {
  viseme: Viseme;
  offsetMs: number;
  durationMs: number;
}

/** Visemes of the response that is (or will be) playing. */
export class VisemeTimeline {
  private responseId: string | null = null;
  private startMs: number | null = null;
  private shapes: Shape[] = [];

  /** Keeps one viseme; shapes of an older response are dropped when a new one arrives. */
  add(responseId: string, viseme: Viseme, offsetMs: number, durationMs: number): void {
    if (responseId !== this.responseId) this.reset(responseId);
    this.shapes.push({ viseme, offsetMs, durationMs });
  }

  /** `responseId`'s audio offset 0 plays at `startMs`. */
  place(responseId: string, startMs: number): void {
    if (responseId !== this.responseId) this.reset(responseId);
    this.startMs = startMs;
  }

  /** Forgets everything (barge-in, response done and played). */
  clear(): void {
    this.reset(null);
  }

  /** The mouth shape at `nowMs`: `sil` outside every viseme. Shapes already over are
   *  discarded, so lookups stay cheap over a long answer. */
  at(nowMs: number): Viseme {
    if (this.startMs === null) return "sil";
    const offset = nowMs - this.startMs;
    let current: Viseme = "sil";
    let firstLive = 0;
    for (const [i, shape] of this.shapes.entries()) {
      if (shape.offsetMs + shape.durationMs <= offset) {
        firstLive = i + 1;
        continue;
      }
      if (shape.offsetMs <= offset) current = shape.viseme;
    }
    if (firstLive > 0) this.shapes.splice(0, firstLive);
    return current;
  }

  private reset(responseId: string | null): void {
    this.responseId = responseId;
    this.startMs = null;
    this.shapes = [];
  }
}
