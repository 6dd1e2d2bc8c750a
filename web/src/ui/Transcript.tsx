//! The conversation as it happens: the customer's words (interim, then final) and the
//! assistant's answer as it streams, with its sources.

import { useEffect, useRef } from "preact/hooks";
import type { Line } from "../voice/conversation";

export interface TranscriptProps {
  lines: Line[];
  assistantName: string;
  /** Shown while there is nothing yet. */
  placeholder: string;
}

export function Transcript({ lines, assistantName, placeholder }: TranscriptProps) {
  const list = useRef<HTMLOListElement>(null);
  useEffect(() => {
    const element = list.current;
    if (element) element.scrollTop = element.scrollHeight;
  }, [lines]);

  if (lines.length === 0) return <p class="adam-transcript adam-transcript--empty">{placeholder}</p>;
  return (
    <ol ref={list} class="adam-transcript" aria-live="polite" aria-label="Conversation">
      {lines.map((line) =>
        line.role === "user" ? (
          <li key={line.id} class="adam-line adam-line--user" data-role="user" data-final={String(line.final)}>
            <span class="adam-line__who">You</span>
            <p class="adam-line__text">{line.text || <span class="adam-dots" aria-label="listening" />}</p>
          </li>
        ) : (
          <li key={line.id} class={`adam-line adam-line--assistant adam-line--${line.status}`} data-role="assistant" data-status={line.status}>
            <span class="adam-line__who">{assistantName}</span>
            <p class="adam-line__text">
              {line.text || (line.status === "streaming" ? <span class="adam-dots" aria-label="thinking" /> : "…")}
            </p>
            {line.status === "cancelled" && <span class="adam-line__tag">interrupted</span>}
            {line.citations.length > 0 && (
              <p class="adam-line__sources">
                Sources: {[...new Set(line.citations.map((c) => (c.page === null ? c.title : `${c.title}, p. ${c.page}`)))].join(" · ")}
              </p>
            )}
          </li>
        ),
      )}
    </ol>
  );
}
