//! The few icons the client uses (inline SVG: no icon font, no request).

export function MicIcon({ off }: { off: boolean }) {
  return (
    <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
      <rect x="9" y="2" width="6" height="12" rx="3" />
      <path d="M5 10v1a7 7 0 0 0 14 0v-1M12 18v4M8 22h8" />
      {off && <path d="M3 3l18 18" />}
    </svg>
  );
}

export function EndIcon() {
  return (
    <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" fill="currentColor">
      <path d="M12 9c-3.3 0-6.3 1-8.8 2.7-.7.5-.9 1.4-.5 2.1l1.2 2c.4.7 1.3 1 2 .7l2.5-1c.6-.3 1-.9.9-1.6l-.2-1.6c1.9-.6 3.9-.6 5.8 0l-.2 1.6c-.1.7.3 1.3.9 1.6l2.5 1c.7.3 1.6 0 2-.7l1.2-2c.4-.7.2-1.6-.5-2.1C18.3 10 15.3 9 12 9z" />
    </svg>
  );
}

export function ChatIcon() {
  return (
    <svg viewBox="0 0 24 24" width="26" height="26" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
      <path d="M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z" />
      <path d="M9 11h.01M12 11h.01M15 11h.01" />
    </svg>
  );
}

export function CloseIcon() {
  return (
    <svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round">
      <path d="M6 6l12 12M18 6L6 18" />
    </svg>
  );
}
