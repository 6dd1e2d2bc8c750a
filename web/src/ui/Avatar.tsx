//! The built-in avatar: an SVG face whose mouth follows the visemes of the audio playing, with
//! idle blinking and a ring showing whether it listens, thinks or speaks. The face is animated
//! outside Preact's render (requestAnimationFrame), so 60 fps mouth updates re-render nothing.
//! A dealership's video avatar (HeyGen) is shown in the same frame, with the same ring.

import { useEffect, useMemo, useRef } from "preact/hooks";
import type { Viseme } from "../voice/events";
import type { AvatarState } from "../voice/conversation";
import { easeShape, MOUTH_SHAPES, mouthPaths, shapeDistance, type MouthShape } from "./mouth";

export interface AvatarProps {
  state: AvatarState;
  /** The mouth shape to show now (read every animation frame). */
  viseme: () => Viseme;
  /** The dealership's avatar settings: `skin_color`, `hair_color`, `accent_color` (hex). */
  settings: Record<string, unknown>;
  /** Accessible name, e.g. "Assistant". */
  label: string;
}

const MOUTH_X = 100;
const MOUTH_Y = 131;
let instances = 0;

export function Avatar({ state, viseme, settings, label }: AvatarProps) {
  const mouth = useRef<SVGGElement>(null);
  const lips = useRef<SVGPathElement>(null);
  const opening = useRef<SVGPathElement>(null);
  const clip = useRef<SVGPathElement>(null);
  const teeth = useRef<SVGRectElement>(null);
  const eyes = useRef<SVGGElement>(null);
  const clipId = useMemo(() => `adam-avatar-${++instances}`, []);
  const colors = avatarColors(settings);

  useEffect(() => {
    let frame = 0;
    let last = performance.now();
    let drawn: MouthShape = MOUTH_SHAPES.sil;
    let shown: Viseme | null = null;
    let nextBlink = last + blinkInterval();
    let blinkEnd = 0;
    let eyesClosed = false;
    let painted = false;

    const draw = (now: number) => {
      const target = viseme();
      if (target !== shown) {
        shown = target;
        mouth.current?.setAttribute("data-viseme", target);
      }
      const next = easeShape(drawn, MOUTH_SHAPES[target], now - last);
      last = now;
      // A mouth at rest is not redrawn: an idle page costs (almost) no CPU.
      if (shapeDistance(next, drawn) > 0.002 || !painted) {
        drawn = next;
        painted = true;
        const paths = mouthPaths(drawn, MOUTH_X, MOUTH_Y);
        lips.current?.setAttribute("d", paths.lips);
        opening.current?.setAttribute("d", paths.opening);
        clip.current?.setAttribute("d", paths.opening);
        const [x, y, w, h] = paths.teeth;
        teeth.current?.setAttribute("x", x.toFixed(2));
        teeth.current?.setAttribute("y", y.toFixed(2));
        teeth.current?.setAttribute("width", w.toFixed(2));
        teeth.current?.setAttribute("height", Math.max(0, h).toFixed(2));
      }

      if (now >= nextBlink) {
        blinkEnd = now + 140;
        nextBlink = now + blinkInterval();
      }
      const closed = now < blinkEnd;
      if (closed !== eyesClosed) {
        eyesClosed = closed;
        eyes.current?.classList.toggle("adam-avatar__eyes--closed", closed);
      }
      frame = requestAnimationFrame(draw);
    };
    frame = requestAnimationFrame(draw);
    return () => cancelAnimationFrame(frame);
  }, [viseme]);

  return (
    <div class={`adam-avatar adam-avatar--${state}`} data-state={state} role="img" aria-label={`${label}, ${stateLabel(state)}`}>
      <span class="adam-avatar__ring" aria-hidden="true" />
      <svg viewBox="0 0 200 200" aria-hidden="true">
        <defs>
          <clipPath id={`${clipId}-mouth`}>
            <path ref={clip} />
          </clipPath>
          <clipPath id={`${clipId}-frame`}>
            <circle cx="100" cy="100" r="90" />
          </clipPath>
        </defs>
        <circle class="adam-avatar__backdrop" cx="100" cy="100" r="90" />
        <g clip-path={`url(#${clipId}-frame)`}>
          <g>
            <path d="M38 200 C42 166 66 152 100 152 C134 152 158 166 162 200 Z" fill={colors.accent} />
            <path d="M86 150 L100 166 L114 150 Z" fill="#ffffff" opacity="0.9" />
            <rect x="88" y="136" width="24" height="20" rx="8" fill={colors.skin} />
            <ellipse cx="49" cy="102" rx="8" ry="12" fill={colors.skin} />
            <ellipse cx="151" cy="102" rx="8" ry="12" fill={colors.skin} />
            <ellipse cx="100" cy="98" rx="50" ry="58" fill={colors.skin} />
            <path
              d="M50 96 C46 56 70 34 102 34 C134 34 156 54 151 96 C146 78 138 66 126 60 C108 70 80 72 62 66 C56 74 52 84 50 96 Z"
              fill={colors.hair}
            />
            <g class="adam-avatar__brows" fill="none" stroke={colors.hair} stroke-width="3.5" stroke-linecap="round">
              <path d="M70 80 Q80 75 90 79" />
              <path d="M110 79 Q120 75 130 80" />
            </g>
            <g ref={eyes} class="adam-avatar__eyes">
              <ellipse cx="80" cy="96" rx="9" ry="6.5" fill="#ffffff" />
              <ellipse cx="120" cy="96" rx="9" ry="6.5" fill="#ffffff" />
              <g class="adam-avatar__irises">
                <circle cx="80" cy="96" r="4.6" fill="#3b2f2a" />
                <circle cx="120" cy="96" r="4.6" fill="#3b2f2a" />
                <circle cx="81.6" cy="94.4" r="1.4" fill="#ffffff" />
                <circle cx="121.6" cy="94.4" r="1.4" fill="#ffffff" />
              </g>
            </g>
            <path d="M100 100 Q97 113 95 116 Q100 119 105 116" fill="none" stroke="#00000022" stroke-width="2" stroke-linecap="round" />
            <ellipse cx="70" cy="118" rx="8" ry="4.5" fill="#f0808033" />
            <ellipse cx="130" cy="118" rx="8" ry="4.5" fill="#f0808033" />
            <g ref={mouth} class="adam-avatar__mouth" data-viseme="sil">
              <path ref={lips} fill="#b8555a" />
              <path ref={opening} fill="#3a1a1f" />
              <rect ref={teeth} fill="#ffffff" rx="1.5" clip-path={`url(#${clipId}-mouth)`} />
            </g>
          </g>
        </g>
      </svg>
    </div>
  );
}

/** The video avatar's picture (its voice plays elsewhere, so the element stays muted). */
export function VideoAvatarView({ state, stream, label }: { state: AvatarState; stream: MediaStream; label: string }) {
  const video = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const element = video.current;
    if (!element) return;
    element.srcObject = stream;
    void element.play().catch(() => undefined); // muted video may always autoplay
    return () => {
      element.srcObject = null;
    };
  }, [stream]);
  return (
    <div class={`adam-avatar adam-avatar--video adam-avatar--${state}`} data-state={state} data-avatar="video" role="img" aria-label={`${label}, ${stateLabel(state)}`}>
      <span class="adam-avatar__ring" aria-hidden="true" />
      <video ref={video} class="adam-avatar__video" autoplay muted playsInline />
    </div>
  );
}

/** Words for the avatar's state, as shown beside it. */
export function stateLabel(state: AvatarState): string {
  return { idle: "Not connected", listening: "Listening", thinking: "Thinking", speaking: "Speaking" }[state];
}

function blinkInterval(): number {
  return 2500 + Math.random() * 3500;
}

const HEX_COLOR = /^#(?:[0-9a-fA-F]{3}){1,2}$/;

function avatarColors(settings: Record<string, unknown>) {
  const pick = (key: string, fallback: string) => {
    const value = settings[key];
    return typeof value === "string" && HEX_COLOR.test(value) ? value : fallback;
  };
  return {
    skin: pick("skin_color", "#f1c7a5"),
    hair: pick("hair_color", "#4a3426"),
    accent: pick("accent_color", "#2563eb"),
  };
}
