//! Mouth geometry of the built-in avatar: each viseme is a target shape, the drawn shape eases
//! towards it frame by frame, and SVG paths are computed from the shape. Pure functions.

import type { Viseme } from "../voice/events";

/** A mouth pose: `width` ×rest width, `open` 0 (closed) to 1 (wide open), `round` 0 (almond)
 *  to 1 (O-shaped), `teeth` 0–1 how much of the upper teeth shows, `press` 0–1 lips pressed. */
export interface MouthShape {
  width: number;
  open: number;
  round: number;
  teeth: number;
  press: number;
}

const shape = (width: number, open: number, round: number, teeth: number, press = 0): MouthShape => ({ width, open, round, teeth, press });

/** Target pose per viseme (Oculus set). */
export const MOUTH_SHAPES: Record<Viseme, MouthShape> = {
  sil: shape(1, 0, 0.3, 0),
  PP: shape(0.94, 0, 0.3, 0, 1),
  FF: shape(1, 0.12, 0.2, 1),
  TH: shape(1, 0.22, 0.3, 0.8),
  DD: shape(1, 0.32, 0.3, 0.7),
  kk: shape(1, 0.38, 0.3, 0.5),
  CH: shape(0.8, 0.36, 0.6, 0.8),
  SS: shape(1.08, 0.18, 0.1, 1),
  nn: shape(1, 0.28, 0.3, 0.5),
  RR: shape(0.82, 0.34, 0.7, 0.3),
  aa: shape(1.1, 1, 0.4, 0.4),
  E: shape(1.18, 0.58, 0.2, 0.7),
  ih: shape(1.12, 0.42, 0.2, 0.7),
  oh: shape(0.78, 0.75, 1, 0.2),
  ou: shape(0.6, 0.45, 1, 0),
};

/** Moves `from` towards `to`; `dtMs` since the last frame, time constant `tauMs`. */
export function easeShape(from: MouthShape, to: MouthShape, dtMs: number, tauMs = 40): MouthShape {
  const k = 1 - Math.exp(-dtMs / tauMs);
  const mix = (a: number, b: number) => a + (b - a) * k;
  return {
    width: mix(from.width, to.width),
    open: mix(from.open, to.open),
    round: mix(from.round, to.round),
    teeth: mix(from.teeth, to.teeth),
    press: mix(from.press, to.press),
  };
}

/** How far apart two poses are (the largest difference of a parameter). */
export function shapeDistance(a: MouthShape, b: MouthShape): number {
  return Math.max(
    Math.abs(a.width - b.width),
    Math.abs(a.open - b.open),
    Math.abs(a.round - b.round),
    Math.abs(a.teeth - b.teeth),
    Math.abs(a.press - b.press),
  );
}

export interface MouthPaths {
  /** The lips (outer outline). */
  lips: string;
  /** The dark opening; also the clip of the teeth. */
  opening: string;
  /** The visible strip of upper teeth: [x, y, width, height]. */
  teeth: [number, number, number, number];
}

const REST_HALF_WIDTH = 17;
const MAX_OPEN = 17;
const SMILE = 2.2;

/** The SVG paths of `s`, centred on (`cx`, `cy`). */
export function mouthPaths(s: MouthShape, cx: number, cy: number): MouthPaths {
  const half = REST_HALF_WIDTH * s.width;
  const open = MAX_OPEN * s.open;
  const cornerY = cy - SMILE * (1 - s.open);
  const upper = 3.4 * (1 - 0.6 * s.press);
  const lower = 4.4 * (1 - 0.5 * s.press);
  const inner = { half: half * 0.9, top: open * 0.4, bottom: open * 0.6 };
  return {
    lips: lens(cx, cy, cornerY, half + 1.5, inner.top + upper, inner.bottom + lower, s.round),
    opening: lens(cx, cy, cornerY, inner.half, inner.top, inner.bottom, s.round),
    teeth: [cx - inner.half, cy - inner.top, inner.half * 2, Math.min(5, open * 0.45) * s.teeth],
  };
}

/** A closed shape from the left corner over the top to the right corner and back under the
 *  bottom: almond-like when `round` is 0, an ellipse when 1. */
function lens(cx: number, cy: number, cornerY: number, half: number, top: number, bottom: number, round: number): string {
  const k = 0.55;
  const side = 0.55 * round;
  const l = cx - half;
  const r = cx + half;
  const t = cy - top;
  const b = cy + bottom;
  const f = (n: number) => n.toFixed(2);
  return [
    `M${f(l)} ${f(cornerY)}`,
    `C${f(l)} ${f(cornerY - top * side)} ${f(cx - half * k)} ${f(t)} ${f(cx)} ${f(t)}`,
    `C${f(cx + half * k)} ${f(t)} ${f(r)} ${f(cornerY - top * side)} ${f(r)} ${f(cornerY)}`,
    `C${f(r)} ${f(cornerY + bottom * side)} ${f(cx + half * k)} ${f(b)} ${f(cx)} ${f(b)}`,
    `C${f(cx - half * k)} ${f(b)} ${f(l)} ${f(cornerY + bottom * side)} ${f(l)} ${f(cornerY)}Z`,
  ].join("");
}
