//! The dealership's settings: name, lead email, persona, voice, avatar, allowed origins, how
//! long transcripts are kept and the recording notice, its usage limits (a super_admin edits
//! them, a dealership_admin sees them), and the embed key with the snippet that puts the
//! widget on the dealership's site.

import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "../api/http";
import type { Dealership } from "../api/types";
import type { PageProps } from "./scope";
import { describeError, useResource } from "./useResource";

interface Draft {
  name: string;
  leadEmail: string;
  timezone: string;
  persona: string;
  voice: string;
  avatar: string;
  origins: string;
  retentionDays: string;
  recordingNotice: string;
  limits: string;
}

function draftOf(d: Dealership): Draft {
  return {
    name: d.name,
    leadEmail: d.lead_email ?? "",
    timezone: d.timezone,
    persona: d.persona,
    voice: d.voice,
    avatar: JSON.stringify(d.avatar, null, 2),
    origins: d.allowed_origins.join("\n"),
    retentionDays: d.retention_days === null ? "" : String(d.retention_days),
    recordingNotice: d.recording_notice ?? "",
    limits: JSON.stringify(d.limits ?? {}, null, 2),
  };
}

/** The form's name of each field Adam validates (the `field` of a 422). */
const FIELD_LABELS: Record<string, string> = {
  name: "Dealership name",
  lead_email: "Lead email",
  timezone: "Time zone",
  persona: "Persona",
  voice: "Voice",
  avatar: "Avatar",
  allowed_origins: "Allowed origins",
  retention_days: "Keep transcripts",
  recording_notice: "Recording notice",
  limits: "Usage limits",
};

/** `""` → null (the server's default); otherwise whole days, 0 to 36500. */
function parseRetention(text: string): number | null | undefined {
  const trimmed = text.trim();
  if (!trimmed) return null;
  if (!/^\d+$/.test(trimmed)) return undefined;
  const days = Number(trimmed);
  return days <= 36500 ? days : undefined;
}

/** A field Adam (or the form) refused, and why. */
interface Invalid {
  field: string;
  reason: string;
}

/** The reason under a refused field. */
function FieldError({ field, invalid }: { field: string; invalid: Invalid | null }) {
  if (invalid?.field !== field) return null;
  return (
    <span class="field__error" data-field-error={field}>
      {invalid.reason.charAt(0).toUpperCase() + invalid.reason.slice(1)}.
    </span>
  );
}

/** The `<script>` tag a dealership pastes into its site. */
export function embedSnippet(embedKey: string, adamOrigin: string = window.location.origin): string {
  return `<script src="${adamOrigin}/widget.js" data-embed-key="${embedKey}" async></script>`;
}

export function SettingsPage({ scope, onDealershipsChanged }: PageProps) {
  const { api, dealershipId } = scope;
  const superAdmin = scope.user.role === "super_admin";
  const dealership = useResource(() => api.request<Dealership>(`/v1/dealerships/${dealershipId}`), dealershipId);
  const [draft, setDraft] = useState<Draft | null>(null);
  const [message, setMessage] = useState<{ tone: "error" | "info"; text: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const [invalid, setInvalid] = useState<Invalid | null>(null);
  const form = useRef<HTMLFormElement>(null);

  // The Save button is far below some fields: bring the refused one into view.
  useEffect(() => {
    if (invalid) form.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
  }, [invalid]);

  useEffect(() => {
    if (dealership.data) setDraft(draftOf(dealership.data));
  }, [dealership.data]);

  if (!dealership.data || !draft) return <section class="admin-page">{dealership.error && <p class="adam-notice adam-notice--error">{dealership.error}</p>}</section>;
  const d = dealership.data;
  const field = (key: keyof Draft) => (e: { currentTarget: { value: string } }) => setDraft({ ...draft, [key]: e.currentTarget.value });

  const refuse = (field: string, reason: string) => {
    setInvalid({ field, reason });
    setMessage({ tone: "error", text: `Not saved: ${FIELD_LABELS[field] ?? field}: ${reason}.` });
  };

  const save = async (event: Event) => {
    event.preventDefault();
    setMessage(null);
    setInvalid(null);
    let avatar: unknown;
    try {
      avatar = JSON.parse(draft.avatar.trim() || "{}");
    } catch {
      return refuse("avatar", "is not valid JSON");
    }
    if (typeof avatar !== "object" || avatar === null || Array.isArray(avatar)) {
      return refuse("avatar", 'must be a JSON object, e.g. {"name": "Ava"}');
    }
    const retentionDays = parseRetention(draft.retentionDays);
    if (retentionDays === undefined) {
      return refuse("retention_days", "must be a whole number of days from 0 (keep forever) to 36500, or empty for the server's default");
    }
    let limits: unknown;
    if (superAdmin) {
      try {
        limits = JSON.parse(draft.limits.trim() || "{}");
      } catch {
        return refuse("limits", "is not valid JSON");
      }
      if (typeof limits !== "object" || limits === null || Array.isArray(limits)) {
        return refuse("limits", 'must be a JSON object, e.g. {"anonymous_sessions": 20}');
      }
    }
    try {
      await api.request(`/v1/dealerships/${d.id}`, {
        method: "PATCH",
        body: {
          name: draft.name.trim(),
          lead_email: draft.leadEmail.trim() || null,
          timezone: draft.timezone.trim() || "UTC",
          persona: draft.persona,
          voice: draft.voice.trim(),
          avatar,
          allowed_origins: draft.origins.split(/\s+/).filter(Boolean),
          retention_days: retentionDays,
          recording_notice: draft.recordingNotice.trim() || null,
          // A dealership_admin may not change its limits: Adam refuses the field from them.
          ...(superAdmin ? { limits } : {}),
        },
      });
      setMessage({ tone: "info", text: "Saved." });
      await dealership.reload();
      onDealershipsChanged(await api.request<Dealership[]>("/v1/dealerships"));
    } catch (err) {
      // A limit's field is `limits.<name>`: shown under the limits.
      const field = err instanceof ApiError && err.field?.startsWith("limits.") ? "limits" : err instanceof ApiError ? err.field : undefined;
      if (err instanceof ApiError && field && field in FIELD_LABELS) refuse(field, field === err.field ? err.message : `${err.field?.slice(7)} ${err.message}`);
      else setMessage({ tone: "error", text: describeError(err) });
    }
  };

  const rotate = async () => {
    if (!window.confirm("Rotate the embed key? The current key stops working at once: every site using it must get the new snippet.")) return;
    try {
      await api.request(`/v1/dealerships/${d.id}/embed-key`, { method: "POST" });
      await dealership.reload();
      setMessage({ tone: "info", text: "A new embed key is active; update the snippet on your site." });
    } catch (err) {
      setMessage({ tone: "error", text: describeError(err) });
    }
  };

  const snippet = embedSnippet(d.embed_key);
  const copy = async () => {
    await navigator.clipboard.writeText(snippet);
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };

  return (
    <section class="admin-page">
      <header class="admin-page__head">
        <div>
          <h1>Settings</h1>
          <p class="admin-page__lead">How the assistant presents itself, and where it may be embedded.</p>
        </div>
      </header>
      {message && (
        <p class={`adam-notice adam-notice--${message.tone}`} role={message.tone === "error" ? "alert" : "status"}>
          {message.text}
        </p>
      )}

      <div class="settings-grid">
        <form class="card form" ref={form} onSubmit={save}>
          <label class="field">
            Dealership name
            <input class="adam-input" required maxLength={200} value={draft.name} aria-invalid={invalid?.field === "name"} onInput={field("name")} />
            <FieldError field="name" invalid={invalid} />
          </label>
          <label class="field">
            Lead email
            <span class="field__hint">
              Where a conversation is emailed when the customer leaves contact details (an email address, a phone number, a call-back request). Empty: no lead emails.
            </span>
            <input
              class="adam-input"
              type="email"
              maxLength={254}
              placeholder="sales@your-dealership.com"
              value={draft.leadEmail}
              aria-invalid={invalid?.field === "lead_email"}
              onInput={field("leadEmail")}
            />
            <FieldError field="lead_email" invalid={invalid} />
          </label>
          <label class="field">
            Time zone
            <span class="field__hint">Where the dealership is, as an IANA name (America/Chicago, Europe/Berlin): what "today" and "tomorrow" mean in a customer's question.</span>
            <input
              class="adam-input"
              maxLength={64}
              placeholder="America/Chicago"
              value={draft.timezone}
              aria-invalid={invalid?.field === "timezone"}
              onInput={field("timezone")}
            />
            <FieldError field="timezone" invalid={invalid} />
          </label>
          <label class="field">
            Persona
            <span class="field__hint">The assistant's instructions: tone, what to offer, what to avoid.</span>
            <textarea class="adam-input" rows={5} maxLength={20000} value={draft.persona} aria-invalid={invalid?.field === "persona"} onInput={field("persona")} />
            <FieldError field="persona" invalid={invalid} />
          </label>
          <label class="field">
            Voice
            <span class="field__hint">The speech voice name ("default" for the server's voice).</span>
            <input class="adam-input" required maxLength={100} value={draft.voice} aria-invalid={invalid?.field === "voice"} onInput={field("voice")} />
            <FieldError field="voice" invalid={invalid} />
          </label>
          <label class="field">
            Avatar
            <span class="field__hint">
              JSON. The built-in avatar reads <code>name</code>, <code>skin_color</code>, <code>hair_color</code> and <code>accent_color</code> (hex colours).
            </span>
            <textarea class="adam-input adam-input--code" rows={5} value={draft.avatar} aria-invalid={invalid?.field === "avatar"} onInput={field("avatar")} />
            <FieldError field="avatar" invalid={invalid} />
          </label>
          <label class="field">
            Allowed origins
            <span class="field__hint">One per line, e.g. https://www.your-dealership.com — the sites where the widget may run.</span>
            <textarea class="adam-input adam-input--code" rows={4} value={draft.origins} aria-invalid={invalid?.field === "allowed_origins"} onInput={field("origins")} />
            <FieldError field="allowed_origins" invalid={invalid} />
          </label>
          <h2 class="form__section">Privacy</h2>
          <label class="field">
            Keep transcripts (days)
            <span class="field__hint">
              Finished conversations are deleted this many days after they end, with their transcripts and the emails sent about them. 0: keep them forever. Empty: the server's default.
            </span>
            <input
              class="adam-input"
              inputMode="numeric"
              maxLength={5}
              placeholder="Server default"
              value={draft.retentionDays}
              aria-invalid={invalid?.field === "retention_days"}
              onInput={field("retentionDays")}
              data-setting="retention_days"
            />
            <FieldError field="retention_days" invalid={invalid} />
          </label>
          <label class="field">
            Recording notice
            <span class="field__hint">Shown to customers in the conversation page and the widget while they talk. Empty: the server's default text.</span>
            <textarea
              class="adam-input"
              rows={2}
              maxLength={500}
              placeholder="Server default"
              value={draft.recordingNotice}
              aria-invalid={invalid?.field === "recording_notice"}
              onInput={field("recordingNotice")}
              data-setting="recording_notice"
            />
            <FieldError field="recording_notice" invalid={invalid} />
          </label>
          <h2 class="form__section">Limits</h2>
          <label class="field">
            Usage limits
            <span class="field__hint">
              {superAdmin
                ? "JSON overrides of the server's [limits] for this dealership, e.g. {\"anonymous_sessions\": 20, \"turns_per_minute\": 10}. Absent keys: the server's value."
                : "Set by the platform's administrators; keys absent here use the server's values."}
            </span>
            <textarea
              class="adam-input adam-input--code"
              rows={4}
              value={draft.limits}
              readOnly={!superAdmin}
              aria-invalid={invalid?.field === "limits"}
              onInput={field("limits")}
              data-setting="limits"
            />
            <FieldError field="limits" invalid={invalid} />
          </label>
          <div>
            <button class="adam-button adam-button--primary" type="submit">
              Save settings
            </button>
          </div>
        </form>

        <div class="card embed">
          <h2>Website widget</h2>
          <p class="card__lead">Paste this into your site's pages, before &lt;/body&gt;. It only works on the allowed origins.</p>
          <pre class="embed__snippet" data-snippet>
            {snippet}
          </pre>
          <div class="embed__actions">
            <button class="adam-button" type="button" onClick={() => void copy()}>
              {copied ? "Copied" : "Copy snippet"}
            </button>
            <a class="adam-button" href={`/?embed_key=${encodeURIComponent(d.embed_key)}`} target="_blank" rel="noopener">
              Try it
            </a>
          </div>
          <h3>Embed key</h3>
          <p class="embed__key">
            <code data-embed-key>{d.embed_key}</code>
          </p>
          <button class="adam-button adam-button--danger" type="button" onClick={() => void rotate()}>
            Rotate key
          </button>
        </div>
      </div>
    </section>
  );
}
