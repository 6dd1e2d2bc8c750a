//! Usage: what the dealership's conversations cost this month, day by day — sessions, turns,
//! speech transcribed, language-model tokens, characters spoken, audio — and its monthly caps.

import type { UsageReport, UsageTotals } from "../api/types";
import { scopeQuery, type PageProps } from "./scope";
import { useResource } from "./useResource";

const minutes = (seconds: number) => (seconds / 60).toFixed(1);

function Cells({ totals }: { totals: UsageTotals }) {
  return (
    <>
      <td>{totals.sessions}</td>
      <td>{totals.turns}</td>
      <td>{minutes(totals.stt_seconds)}</td>
      <td>{totals.prompt_tokens + totals.completion_tokens}</td>
      <td>{totals.tts_characters}</td>
      <td>{minutes(totals.audio_in_seconds)}</td>
      <td>{minutes(totals.audio_out_seconds)}</td>
    </>
  );
}

function cap(used: number, limit: number, unit: string) {
  return limit > 0 ? `${used} of ${limit} ${unit}` : `${used} ${unit} (no cap)`;
}

export function UsagePage({ scope }: PageProps) {
  const query = scopeQuery(scope);
  const report = useResource(() => scope.api.request<UsageReport>(`/v1/usage${query}`), query);
  const usage = report.data?.dealerships.find((d) => d.dealership_id === scope.dealershipId) ?? report.data?.dealerships[0];

  return (
    <section class="admin-page">
      <header class="admin-page__head">
        <div>
          <h1>Usage</h1>
          <p class="admin-page__lead">
            What conversations cost this month (UTC days): sessions, answers, minutes of speech transcribed, language-model
            tokens, characters spoken and minutes of audio.
          </p>
        </div>
        <div class="admin-page__actions">
          <button class="adam-button" type="button" onClick={() => void report.reload()}>
            Refresh
          </button>
        </div>
      </header>
      {report.error && <p class="adam-notice adam-notice--error">{report.error}</p>}
      {usage && (
        <p data-testid="usage-caps">
          This month: {cap(usage.month_turns, usage.monthly_turns_cap, "answers")} ·{" "}
          {cap(Number(usage.month_audio_minutes.toFixed(1)), usage.monthly_audio_minutes_cap, "minutes of customer audio")}
        </p>
      )}
      <div class="table-wrap">
        <table class="table" data-testid="usage">
          <thead>
            <tr>
              <th>Day</th>
              <th>Sessions</th>
              <th>Answers</th>
              <th>Speech (min)</th>
              <th>LLM tokens</th>
              <th>Characters spoken</th>
              <th>Audio in (min)</th>
              <th>Audio out (min)</th>
            </tr>
          </thead>
          <tbody>
            {(usage?.days.length ?? 0) === 0 && (
              <tr>
                <td colSpan={8} class="table__empty">
                  {report.loading ? "Loading…" : "No conversations this month."}
                </td>
              </tr>
            )}
            {usage?.days.map((day) => (
              <tr key={day.day}>
                <td>{day.day}</td>
                <Cells totals={day} />
              </tr>
            ))}
            {usage && usage.days.length > 1 && (
              <tr class="table__total">
                <td>Total</td>
                <Cells totals={usage.totals} />
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}
