//! Reconnect delays: 1 s, 2 s, 4 s … up to 30 s, with jitter so that many clients dropped at
//! once by a restarting node do not come back in step.

const BASE_MS = 1000;
const MAX_MS = 30000;

/** The delay before reconnect attempt `attempt` (0-based); `random` in [0, 1). */
export function backoffDelayMs(attempt: number, random: number = Math.random()): number {
  const ceiling = Math.min(MAX_MS, BASE_MS * 2 ** attempt);
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}
